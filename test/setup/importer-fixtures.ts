// Writes the synthetic importer fixtures before the tests run. The MovieLens-100K-layout ones are not
// committed: their file names (u.data, u.item) are those of a dataset that may not be redistributed, and a
// repository check refuses such names even for synthetic content.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export default function setup(): void {
  execFileSync(process.execPath, [join(__dirname, '..', 'fixtures', 'importers', 'make-fixtures.mjs')], { stdio: 'inherit' });
}
