// Catalog: backbone rows and their pretraining history (migration 2; stage 0 and the held-out loss: migration
// 3), and the folder bookkeeping shared by the service and the CLI (a registered folder is never deleted).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPretrainedBackbone, pretrainedBackboneDir, removeBackboneFiles } from '../../src/core/backbone/backbone-store';
import { Catalog, migrate, MIGRATIONS } from '../../src/core/catalog';
import { importDataset } from '../../src/core/importers';
import type { HeldOutReport, PretrainPoint, PretrainStage } from '../../src/shared/backbones';

const FIXTURES = path.resolve(__dirname, '../fixtures/importers');
const point = (step: number, stage: PretrainStage, loss: number): PretrainPoint => ({ step, stage, loss, learningRate: 1e-3, seconds: step / 10 });

let tmp: string;
let catalog: Catalog;
let datasetId: number;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'almostrec-backbones-'));
  catalog = Catalog.open(path.join(tmp, 'catalog.sqlite'));
  ({ datasetId } = await importDataset(catalog, { format: 'movielens-latest', path: path.join(FIXTURES, 'ml-latest'), name: 'tiny', options: {} }));
});
afterAll(() => {
  catalog.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('backbone migration', () => {
  it('upgrades a catalog written before backbones existed, keeping its data', () => {
    const file = path.join(tmp, 'v1.sqlite');
    const db = new BetterSqlite3(file);
    migrate(db, MIGRATIONS.slice(0, 1));
    db.prepare("INSERT INTO datasets (name, format, source_path, imported_at, stats) VALUES ('old', 'generic', '/x', 'now', '{}')").run();
    db.close();
    const upgraded = Catalog.open(file);
    try {
      expect(upgraded.db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
      expect(upgraded.listDatasets().map((d) => d.name)).toEqual(['old']);
      expect(upgraded.listBackbones()).toEqual([]);
    } finally {
      upgraded.close();
    }
  });

  it('upgrades a catalog from before stage 0: the history keeps its rows and takes stage 0, the held-out loss is stored', () => {
    const file = path.join(tmp, 'v2.sqlite');
    const db = new BetterSqlite3(file);
    migrate(db, MIGRATIONS.slice(0, 2));
    db.prepare("INSERT INTO backbones (name, source, status, path, created_at) VALUES ('old', 'pretrained', 'succeeded', '/x', 'now')").run();
    db.prepare('INSERT INTO backbone_history VALUES (1, 1, 1, 10.25, 0.001, 0.1), (1, 2, 2, 9.5, 0.001, 0.2)').run();
    db.close();
    const upgraded = Catalog.open(file);
    try {
      expect(upgraded.getBackbone(1)).toMatchObject({ name: 'old', history: [point(1, 1, 10.25), point(2, 2, 9.5)], heldOut: null });
      upgraded.appendPretrainPoints(1, [point(3, 0, 8)]);
      expect(upgraded.getBackbone(1)!.history.map((p) => p.stage)).toEqual([1, 2, 0]);
      const report: HeldOutReport = {
        items: 3,
        posters: 2,
        textTokens: 40,
        posterTokens: 30,
        points: [{ after: 'start', step: 0, text: 10.4, withPoster: 10.41, withoutPoster: 10.39 }, { after: 0, step: 5, text: 7.5, withPoster: null, withoutPoster: null }]
      };
      upgraded.updateBackbone(1, { heldOut: report });
      expect(upgraded.getBackbone(1)!.heldOut).toEqual(report);
      upgraded.updateBackbone(1, { heldOut: null });
      expect(upgraded.getBackbone(1)!.heldOut).toBeNull();
      upgraded.deleteBackbone(1);
      expect(upgraded.db.prepare('SELECT COUNT(*) AS n FROM backbone_history').get()).toEqual({ n: 0 }); // the cascade survived the rebuild
    } finally {
      upgraded.close();
    }
  });
});

describe('backbones', () => {
  it('creates rows with a status that fits the source, and refuses a second name clearly', () => {
    const pre = catalog.createBackbone({ name: 'compact-tiny', source: 'pretrained', datasetId, path: '/data/backbones/x', config: { hiddenSize: 32 } });
    const hf = catalog.createBackbone({
      name: 'llava-tiny',
      source: 'huggingface',
      datasetId: null,
      path: '/models/llava',
      config: {},
      architecture: 'CLIP ViT 2×32 → MLP → LLaMA 2×64',
      parameters: 123456
    });
    expect(catalog.getBackbone(pre)).toMatchObject({
      name: 'compact-tiny',
      source: 'pretrained',
      status: 'queued',
      datasetId,
      datasetName: 'tiny',
      config: { hiddenSize: 32 },
      architecture: null,
      parameters: null,
      startedAt: null,
      endedAt: null,
      error: null,
      backend: null,
      history: []
    });
    expect(catalog.getBackbone(hf)).toMatchObject({ status: 'succeeded', datasetId: null, datasetName: null, parameters: 123456 });
    expect(catalog.listBackbones().map((b) => b.id)).toEqual([hf, pre]);
    expect(catalog.findBackboneByName('llava-tiny')?.id).toBe(hf);
    expect(catalog.findBackboneByName('nope')).toBeNull();
    expect(() => catalog.createBackbone({ name: 'llava-tiny', source: 'huggingface', datasetId: null, path: '/y', config: {} })).toThrow(
      'A backbone named "llava-tiny" already exists'
    );
    expect(() => catalog.createBackbone({ name: 'bad', source: 'other' as never, datasetId: null, path: '/y', config: {} })).toThrow(/CHECK/);
    catalog.deleteBackbone(pre);
    catalog.deleteBackbone(hf);
  });

  it('updates the fields a job reports and refuses unknown ids and fields', () => {
    const id = catalog.createBackbone({ name: 'upd', source: 'pretrained', datasetId, path: '', config: {} });
    catalog.updateBackbone(id, {
      status: 'running',
      startedAt: '2026-01-01T00:00:00Z',
      architecture: 'MobileNetV2 grid 3×3 → MLP → LLaMA 1×32',
      parameters: 4242,
      path: '/data/backbones/1',
      config: { hiddenSize: 64 }
    });
    catalog.updateBackbone(id, { status: 'failed', endedAt: '2026-01-01T00:10:00Z', error: 'boom', startedAt: undefined });
    expect(catalog.getBackbone(id)).toMatchObject({
      status: 'failed',
      startedAt: '2026-01-01T00:00:00Z',
      endedAt: '2026-01-01T00:10:00Z',
      error: 'boom',
      parameters: 4242,
      path: '/data/backbones/1',
      config: { hiddenSize: 64 }
    });
    catalog.updateBackbone(id, { status: 'running', error: null, endedAt: null });
    expect(catalog.getBackbone(id)).toMatchObject({ status: 'running', error: null, endedAt: null, backend: null });
    // What the pretraining ran on: two threads where a replica computed a shard of every step.
    const ran = { name: 'wasm', threads: 2, device: 'CPU (wasm SIMD + onnxruntime)', simd: true };
    catalog.updateBackbone(id, { status: 'succeeded', backend: ran });
    expect(catalog.getBackbone(id)!.backend).toEqual(ran);
    expect(catalog.listBackbones().find((b) => b.id === id)!.backend).toEqual(ran);
    expect(() => catalog.updateBackbone(424242, { status: 'failed' })).toThrow(/backbone 424242 does not exist/);
    expect(() => catalog.updateBackbone(id, { nope: 1 } as never)).toThrow(/unknown field 'nope'/);
    expect(() => catalog.updateBackbone(id, { status: 'exploded' as never })).toThrow(/CHECK/);
    catalog.deleteBackbone(id);
  });

  it('keeps the step history in order; a resume truncates and rewrites the steps it repeats', () => {
    const id = catalog.createBackbone({ name: 'hist', source: 'pretrained', datasetId, path: '', config: {} });
    catalog.appendPretrainPoints(id, [point(1, 1, 9), point(2, 1, 8), point(3, 2, 7)]);
    catalog.appendPretrainPoints(id, [point(4, 2, 6)]);
    catalog.truncatePretrainHistory(id, 2); // resumed from the step-2 checkpoint
    catalog.appendPretrainPoints(id, [point(2, 1, 7.5), point(3, 2, 6.5)]);
    expect(catalog.getBackbone(id)!.history).toEqual([point(1, 1, 9), point(2, 1, 7.5), point(3, 2, 6.5)]);
    expect(() => catalog.appendPretrainPoints(id, [{ ...point(5, 2, 1), stage: 3 as never }])).toThrow(/CHECK/);
    expect(catalog.getBackbone(id)!.history).toHaveLength(3); // the failed batch wrote nothing
    expect(catalog.deleteBackbone(id)).toBe(true);
    expect(catalog.deleteBackbone(id)).toBe(false);
    expect(catalog.getBackbone(id)).toBeNull();
    expect(catalog.db.prepare('SELECT COUNT(*) AS n FROM backbone_history WHERE backbone_id = ?').get(id)).toEqual({ n: 0 });
  });

  it('never reuses the id of a deleted backbone', () => {
    const a = catalog.createBackbone({ name: 'first', source: 'pretrained', datasetId, path: '', config: {} });
    catalog.deleteBackbone(a);
    const b = catalog.createBackbone({ name: 'second', source: 'pretrained', datasetId, path: '', config: {} });
    expect(b).toBeGreaterThan(a);
    catalog.deleteBackbone(b);
  });

  it('outlives its dataset: the dataset reference becomes null', async () => {
    const { datasetId: other } = await importDataset(catalog, { format: 'microlens', path: path.join(FIXTURES, 'microlens'), name: 'other', options: {} });
    const id = catalog.createBackbone({ name: 'orphan', source: 'pretrained', datasetId: other, path: '', config: {} });
    catalog.appendPretrainPoints(id, [point(1, 1, 3)]);
    expect(catalog.deleteDataset(other)).toBe(true);
    expect(catalog.getBackbone(id)).toMatchObject({ datasetId: null, datasetName: null, history: [point(1, 1, 3)] });
    catalog.deleteBackbone(id);
  });
});

describe('backbone folders', () => {
  it('creates a pretrained backbone in its own folder under the data dir', () => {
    const dataDir = path.join(tmp, 'data');
    const id = createPretrainedBackbone(catalog, dataDir, { name: 'store', datasetId, config: { seed: 1 } });
    const b = catalog.getBackbone(id)!;
    expect(b).toMatchObject({ status: 'queued', source: 'pretrained', config: { seed: 1 } });
    expect(b.path).toBe(path.join(dataDir, 'backbones', String(id)));
    expect(pretrainedBackboneDir(dataDir, id)).toBe(b.path);
    // A taken name leaves no half-created row behind.
    expect(() => createPretrainedBackbone(catalog, dataDir, { name: 'store', datasetId, config: {} })).toThrow(/already exists/);
    expect(catalog.listBackbones().filter((x) => x.name === 'store')).toHaveLength(1);
    catalog.deleteBackbone(id);
  });

  it('deletes the folder of a backbone pretrained here, never a registered one or one outside its own folder', () => {
    const dataDir = path.join(tmp, 'data2');
    const own = pretrainedBackboneDir(dataDir, 7);
    fs.mkdirSync(own, { recursive: true });
    fs.writeFileSync(path.join(own, 'model.safetensors'), 'x');
    const user = path.join(tmp, 'user-model');
    fs.mkdirSync(user, { recursive: true });
    fs.writeFileSync(path.join(user, 'config.json'), '{}');

    expect(removeBackboneFiles(dataDir, { id: 8, source: 'huggingface', path: user })).toBeNull();
    expect(removeBackboneFiles(dataDir, { id: 8, source: 'pretrained', path: user })).toBeNull(); // not its own folder
    expect(removeBackboneFiles(dataDir, { id: 8, source: 'pretrained', path: own })).toBeNull(); // another backbone's folder
    expect(fs.existsSync(path.join(user, 'config.json'))).toBe(true);
    expect(fs.existsSync(own)).toBe(true);

    expect(removeBackboneFiles(dataDir, { id: 7, source: 'pretrained', path: path.join(own, 'model') })).toBe(own);
    expect(fs.existsSync(own)).toBe(false);
    expect(removeBackboneFiles(dataDir, { id: 7, source: 'pretrained', path: own })).toBe(own); // already gone: no error
  });
});
