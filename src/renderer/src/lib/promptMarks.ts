// An LLM case's prompt text (core renderPieces: `<s>`, `[ID:item]`, `<image×k:item>`) split into plain text
// and marks, so the view can style the tokens that are not words. Pure: unit tests import it under node.

export type PromptSegment =
  | { kind: 'text'; text: string }
  | { kind: 'bos' }
  | { kind: 'id'; label: string }
  | { kind: 'image'; count: number; label: string };

// A label never spans lines; a title holding "]" (or ">") ends its mark early, which only affects styling.
const MARK = /<s>|\[ID:([^\]\n]*)\]|<image×(\d+):([^>\n]*)>/g;

export function promptSegments(prompt: string): PromptSegment[] {
  const out: PromptSegment[] = [];
  let at = 0;
  for (const m of prompt.matchAll(MARK)) {
    if (m.index > at) out.push({ kind: 'text', text: prompt.slice(at, m.index) });
    if (m[0] === '<s>') out.push({ kind: 'bos' });
    else if (m[1] !== undefined) out.push({ kind: 'id', label: m[1] });
    else out.push({ kind: 'image', count: Number(m[2]), label: m[3] });
    at = m.index + m[0].length;
  }
  if (at < prompt.length) out.push({ kind: 'text', text: prompt.slice(at) });
  return out;
}
