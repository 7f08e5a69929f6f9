// The case study's prompt text split into words and marks (renderer lib/promptMarks.ts), as renderPieces writes them.
import { expect, test } from 'vitest';
import { promptSegments } from '../../src/renderer/src/lib/promptMarks';

test('BOS, ID tokens and visual tokens become marks; everything else stays text, in order', () => {
  expect(promptSegments('<s> predict the next one <image×4:Matrix, The (1999)> the matrix [ID:Matrix, The (1999)] [ID:m42] ;')).toEqual([
    { kind: 'bos' },
    { kind: 'text', text: ' predict the next one ' },
    { kind: 'image', count: 4, label: 'Matrix, The (1999)' },
    { kind: 'text', text: ' the matrix ' },
    { kind: 'id', label: 'Matrix, The (1999)' },
    { kind: 'text', text: ' ' },
    { kind: 'id', label: 'm42' },
    { kind: 'text', text: ' ;' }
  ]);
  expect(promptSegments('titles only ; heat ;')).toEqual([{ kind: 'text', text: 'titles only ; heat ;' }]);
  expect(promptSegments('')).toEqual([]);
});
