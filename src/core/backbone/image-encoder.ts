// The backbone's image side alone (vision tower + projector, never the decoder), as an ImageTokenEncoder for
// the visual-token cache: ALMOSTREC runs (models/) and the backbone-features job (jobs/) both build on it.
import * as tf from '@tensorflow/tfjs-core';
import type { Catalog } from '../catalog';
import type { CancelSignal, ProgressFn } from '../progress';
import { readItemImages } from '../vision/feature-store';
import { decodeRgb, type RgbImage } from '../vision/image-decode';
import { ClipVisionTower, clipLinearPaths } from './clip-vision';
import { clipPixelValues } from './clip-image';
import type { LlavaConfig } from './config';
import type { ImageTokenEncoder } from './feature-cache';
import { gridEncoderId, loadItemGrids } from './grid-encoder';
import { loadHfCheckpoint } from './hf-checkpoint';
import { Linears } from './lora';
import { projectFeatures, PROJECTOR_LINEARS } from './projector';
import { visionLayersUsed } from './weight-names';

/**
 * The backbone's visual tokens per item: compact backbones run the cached MobileNetV2 grid through their
 * projector; llava-hf checkpoints run CLIP on the preprocessed poster. Only the vision tower and the
 * projector are loaded (never the decoder).
 */
export async function backboneImageEncoder(
  catalog: Catalog,
  backboneId: number,
  onProgress?: ProgressFn,
  signal?: CancelSignal
): Promise<ImageTokenEncoder & { dispose(): void }> {
  const b = catalog.getBackbone(backboneId);
  if (!b) throw new Error(`Backbone ${backboneId} not found`);
  if (b.status !== 'succeeded') throw new Error(`Backbone ${backboneId} (${b.name}) is ${b.status}; it must finish pretraining first`);
  const loaded = loadHfCheckpoint(b.path, { skip: (n) => n.startsWith('text.') || n === 'lm_head.weight' });
  const cfg: LlavaConfig = loaded.config;
  const weights = loaded.weights;
  const linears = new Linears();
  for (const p of PROJECTOR_LINEARS) linears.add(p, weights.get(`${p}.weight`)!, weights.get(`${p}.bias`));
  const dim = cfg.text.hiddenSize;
  const dispose = () => {
    linears.dispose();
    for (const t of weights.values()) t.dispose();
  };
  const project = (feats: tf.Tensor3D): Float32Array[] => {
    const out = tf.tidy(() => projectFeatures(linears, feats));
    const flat = out.dataSync() as Float32Array;
    const [n, tokens] = out.shape;
    out.dispose();
    return Array.from({ length: n }, (_, i) => flat.slice(i * tokens * dim, (i + 1) * tokens * dim));
  };
  if (cfg.vision.kind === 'mobilenet_v2') {
    const g = cfg.vision.gridSize;
    if (cfg.vision.encoderId !== gridEncoderId(g)) throw new Error(`Backbone ${b.name} was pretrained on image features "${cfg.vision.encoderId}"; this build computes "${gridEncoderId(g)}"`);
    return {
      id: String(backboneId),
      tokensPerImage: g * g,
      dim,
      gridSide: g,
      dispose,
      async encodeItems(itemIds) {
        const grids = await loadItemGrids(catalog, itemIds, g, onProgress, signal);
        const ids = [...grids.keys()];
        const out = new Map<number, Float32Array>();
        if (!ids.length) return out;
        const data = new Float32Array(ids.length * g * g * 1280);
        ids.forEach((id, i) => data.set(grids.get(id)!, i * g * g * 1280));
        const feats = tf.tensor3d(data, [ids.length, g * g, 1280]);
        project(feats).forEach((t, i) => out.set(ids[i], t));
        feats.dispose();
        return out;
      }
    };
  }
  const v = cfg.vision;
  for (const p of clipLinearPaths(visionLayersUsed(cfg))) linears.add(p, weights.get(`${p}.weight`)!, weights.get(`${p}.bias`));
  const tower = new ClipVisionTower(v, weights, linears, cfg.visionFeatureLayer, cfg.visionFeatureSelectStrategy === 'default');
  const side = v.imageSize / v.patchSize;
  return {
    id: String(backboneId),
    tokensPerImage: tower.tokens,
    dim,
    gridSide: side,
    dispose,
    encodeItems(itemIds) {
      const out = new Map<number, Float32Array>();
      const images: { itemId: number; img: RgbImage }[] = [];
      for (const { itemId, bytes } of readItemImages(catalog, itemIds)) {
        try {
          images.push({ itemId, img: decodeRgb(bytes) });
        } catch {
          // An undecodable poster counts as no image (no visual tokens), as everywhere else.
        }
      }
      if (!images.length) return Promise.resolve(out);
      const px = clipPixelValues(
        images.map((x) => x.img),
        v.imageSize
      );
      const feats = tower.features(px);
      px.dispose();
      project(feats as tf.Tensor3D).forEach((t, i) => out.set(images[i].itemId, t));
      feats.dispose();
      return Promise.resolve(out);
    }
  };
}
