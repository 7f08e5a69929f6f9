// Turns anything thrown by a service method into the {code, message, details} shape that crosses the
// API boundary, so the UI never has to show a bare stack trace.
import { ZodError } from 'zod';
import type { ApiErrorCode } from '../../shared/api';
import type { ApiErrorShape } from '../../shared/types';

export class ApiFailure extends Error {
  constructor(
    readonly code: ApiErrorCode,
    message: string,
    readonly details?: unknown
  ) {
    super(message);
    this.name = 'ApiFailure';
  }
}

export function notFound(what: string): ApiFailure {
  return new ApiFailure('not_found', `${what} not found`);
}

export function toApiError(err: unknown): ApiErrorShape {
  if (err instanceof ApiFailure) return { code: err.code, message: err.message, details: err.details };
  if (err instanceof ZodError) {
    const issues = err.issues.map((i) => `${i.path.join('.') || '(input)'}: ${i.message}`);
    return { code: 'invalid_input', message: `Invalid input — ${issues.join('; ')}`, details: err.issues };
  }
  if (err instanceof Error) {
    // Importer errors carry the file and line; keep them as details for the UI.
    const withLocation = err as Error & { file?: string; line?: number | null };
    if (err.name === 'ImportError') {
      return { code: 'import_error', message: err.message, details: { file: withLocation.file, line: withLocation.line } };
    }
    // A reference in the input (backbone, sequential run) that cannot serve: the caller's to fix.
    if (err.name === 'InvalidReferenceError') return { code: 'invalid_input', message: err.message };
    return { code: 'internal', message: err.message || err.name };
  }
  return { code: 'internal', message: String(err) };
}
