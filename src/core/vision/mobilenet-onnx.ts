// Converts the loaded tfjs-layers MobileNetV2 (vision/encoder.ts) to an ONNX graph, so the frozen encoder
// runs in onnxruntime's MLAS kernels instead of tfjs-wasm (~0.26 s per poster on one core there).
// It walks model.layers (Keras's topological order), their getConfig() (tfjs's camelCase keys) and
// getWeights(), and handles exactly the layer types the network has up to flatten_1: InputLayer,
// ZeroPadding2D, Conv2D, DepthwiseConv2D, BatchNormalization (folded into the convolution before it), ReLU
// (maxValue → Clip), Add, AveragePooling2D and Flatten; any other type throws. Layers past the requested outputs (nsfwjs's Dense /
// Dropout head) are never visited.
//
// Layout: the graph takes the NHWC batch nsfwjs feeds ([n, H, W, 3], already resized and / 255) and
// transposes it once to NCHW; kernels go HWIO → OIHW, depthwise HWC1 → C1HW with group = C. TF's 'same'
// padding puts the odd extra pixel at the bottom / right (stride 2), so pads are computed explicitly. 4-D
// outputs come out NCHW ([n, C, H, W]).
import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { onnx } from 'onnx-proto';
import { FLOAT, floatInit, int64Init, modelBytes, node, valueInfo } from '../tensor/onnx-graph';

/** The graph's input name: the NHWC image batch. */
export const ONNX_INPUT = 'image_nhwc';

const SUPPORTED = ['InputLayer', 'ZeroPadding2D', 'Conv2D', 'DepthwiseConv2D', 'BatchNormalization', 'ReLU', 'Add', 'AveragePooling2D', 'Flatten'];

type Layer = tfl.layers.Layer;
type Config = Record<string, unknown>;

/** Channels and spatial size of a value (NCHW), or just its width after Flatten. */
type Shape = { c: number; h: number; w: number } | { flat: number };

/** A ZeroPadding2D not yet emitted: a following convolution absorbs it into its own pads. */
interface PendingPad {
  input: string;
  top: number;
  bottom: number;
  left: number;
  right: number;
}

const inboundNames = (layer: Layer): string[] => (layer.inboundNodes[0]?.inboundLayers ?? []).map((l) => l.name);

/** Serialized ONNX model computing the named layers' outputs of `model` (see the header comment). */
export function mobilenetOnnxModel(model: tfl.LayersModel, outputs: readonly string[]): Uint8Array {
  return modelBytes(new Converter(model).graph(outputs));
}

class Converter {
  private readonly byName = new Map<string, Layer>();
  private readonly consumers = new Map<string, string[]>();
  private readonly shapes = new Map<string, Shape>();
  private readonly pending = new Map<string, PendingPad>();
  /** BatchNormalization layers folded into a convolution: their value is the convolution's output. */
  private readonly folded = new Set<string>();
  /** Graph outputs: their values must exist under their own names (never folded or absorbed). */
  private readonly requested = new Set<string>();
  private readonly nodes: onnx.INodeProto[] = [];
  private readonly inits: onnx.ITensorProto[] = [];
  private readonly inputs: onnx.IValueInfoProto[] = [];

  constructor(private readonly model: tfl.LayersModel) {
    for (const layer of model.layers) {
      this.byName.set(layer.name, layer);
      for (const src of inboundNames(layer)) this.consumers.set(src, [...(this.consumers.get(src) ?? []), layer.name]);
    }
  }

  graph(outputs: readonly string[]): onnx.IGraphProto {
    for (const name of outputs) this.requested.add(name);
    const needed = this.ancestors(outputs);
    for (const layer of this.model.layers) if (needed.has(layer.name)) this.convert(layer);
    const outputInfo = outputs.map((name) => {
      const value = this.materialise(name);
      const s = this.shapes.get(name)!;
      return valueInfo(value, FLOAT, 'flat' in s ? ['batch', s.flat] : ['batch', s.c, s.h, s.w]);
    });
    return { name: 'mobilenet_v2', node: this.nodes, initializer: this.inits, input: this.inputs, output: outputInfo };
  }

  /** The layers `outputs` depend on. */
  private ancestors(outputs: readonly string[]): Set<string> {
    const seen = new Set<string>();
    const stack = [...outputs];
    while (stack.length > 0) {
      const name = stack.pop()!;
      if (seen.has(name)) continue;
      const layer = this.byName.get(name);
      if (!layer) throw new Error(`MobileNetV2 → ONNX: the model has no layer "${name}"`);
      seen.add(name);
      stack.push(...inboundNames(layer));
    }
    return seen;
  }

  private convert(layer: Layer): void {
    const cls = layer.getClassName();
    const config = layer.getConfig() as Config;
    if ('dataFormat' in config && config.dataFormat !== 'channelsLast') {
      throw new Error(`MobileNetV2 → ONNX: layer ${layer.name} has dataFormat ${String(config.dataFormat)}, expected channelsLast`);
    }
    const inputs = inboundNames(layer);
    switch (cls) {
      case 'InputLayer':
        return this.input(layer, config);
      case 'ZeroPadding2D':
        return this.zeroPad(layer, config, inputs[0]);
      case 'Conv2D':
      case 'DepthwiseConv2D':
        return this.conv(layer, config, inputs[0], cls === 'DepthwiseConv2D');
      case 'BatchNormalization':
        if (!this.folded.has(layer.name)) {
          throw new Error(`MobileNetV2 → ONNX: BatchNormalization ${layer.name} does not directly follow a convolution it can be folded into`);
        }
        return;
      case 'ReLU':
        return this.relu(layer, config, inputs[0]);
      case 'Add':
        return this.add(layer, inputs);
      case 'AveragePooling2D':
        return this.avgPool(layer, config, inputs[0]);
      case 'Flatten':
        return this.flatten(layer, inputs[0]);
      default:
        throw new Error(`MobileNetV2 → ONNX: layer ${layer.name} is a ${cls}, which the converter does not handle (it handles ${SUPPORTED.join(', ')})`);
    }
  }

  private spatial(name: string): { c: number; h: number; w: number } {
    const s = this.shapes.get(name);
    if (!s || 'flat' in s) throw new Error(`MobileNetV2 → ONNX: ${name} is not a feature map`);
    return s;
  }

  /** The ONNX value holding `name`'s output, emitting a deferred ZeroPadding2D as a Pad node when a non-convolution reads it. */
  private materialise(name: string): string {
    const pad = this.pending.get(name);
    if (!pad) return name;
    this.pending.delete(name);
    this.inits.push(int64Init(`${name}/pads`, [0, 0, pad.top, pad.left, 0, 0, pad.bottom, pad.right]));
    this.nodes.push(node('Pad', [pad.input, `${name}/pads`], [name]));
    return name;
  }

  private input(layer: Layer, config: Config): void {
    const shape = config.batchInputShape as (number | null)[];
    const [, h, w, c] = shape;
    if (shape.length !== 4 || !h || !w || !c) throw new Error(`MobileNetV2 → ONNX: input ${layer.name} has shape [${shape.join(', ')}], expected [batch, H, W, C]`);
    this.inputs.push(valueInfo(ONNX_INPUT, FLOAT, ['batch', h, w, c]));
    this.nodes.push(node('Transpose', [ONNX_INPUT], [layer.name], { perm: [0, 3, 1, 2] }));
    this.shapes.set(layer.name, { c, h, w });
  }

  private zeroPad(layer: Layer, config: Config, input: string): void {
    const [[top, bottom], [left, right]] = config.padding as [[number, number], [number, number]];
    const s = this.spatial(input);
    this.pending.set(layer.name, { input: this.materialise(input), top, bottom, left, right });
    this.shapes.set(layer.name, { c: s.c, h: s.h + top + bottom, w: s.w + left + right });
  }

  private conv(layer: Layer, config: Config, input: string, depthwise: boolean): void {
    const [kh, kw] = config.kernelSize as [number, number];
    const [sh, sw] = config.strides as [number, number];
    const dilation = config.dilationRate as [number, number];
    if (dilation[0] !== 1 || dilation[1] !== 1) throw new Error(`MobileNetV2 → ONNX: ${layer.name} has dilation ${dilation.join('×')}, only 1 is handled`);
    if (config.activation !== 'linear') throw new Error(`MobileNetV2 → ONNX: ${layer.name} has activation ${String(config.activation)}, only linear is handled`);
    // A ZeroPadding2D right before the convolution becomes part of its pads (no separate Pad node).
    const pad = this.consumers.get(input)?.length === 1 && !this.requested.has(input) ? this.pending.get(input) : undefined;
    if (pad) this.pending.delete(input);
    const src = pad ? pad.input : this.materialise(input);
    const pre = pad ?? { top: 0, bottom: 0, left: 0, right: 0 };
    const s = this.spatial(input);
    const [padH, outH] = tfPadding(config.padding as string, s.h, kh, sh);
    const [padW, outW] = tfPadding(config.padding as string, s.w, kw, sw);
    const pads = [pre.top + padH[0], pre.left + padW[0], pre.bottom + padH[1], pre.right + padW[1]];

    const weights = weightsByRole(layer);
    const kernel = weights.get(depthwise ? 'depthwise_kernel' : 'kernel');
    if (!kernel) throw new Error(`MobileNetV2 → ONNX: ${layer.name} has no kernel weight`);
    const [, , cin, k3] = kernel.shape;
    const cout = depthwise ? cin * k3 : k3;
    const w = depthwise ? depthwiseToOnnx(kernel.data, kh, kw, cin, k3) : convToOnnx(kernel.data, kh, kw, cin, cout);
    if (w.length !== cout * (depthwise ? 1 : cin) * kh * kw) throw new Error(`MobileNetV2 → ONNX: ${layer.name}'s kernel does not match its kernel_size`);
    const bias = new Float64Array(cout);
    const b = weights.get('bias');
    if (b) bias.set(b.data);

    // Fold the BatchNormalization that alone reads this convolution: w' = w · γ/√(σ² + ε), b' = (b − μ) · γ/√(σ² + ε) + β.
    const next = this.consumers.get(layer.name) ?? [];
    const bn = next.length === 1 ? this.byName.get(next[0]) : undefined;
    let out = layer.name;
    if (bn?.getClassName() === 'BatchNormalization' && !this.requested.has(layer.name)) {
      foldBatchNorm(bn, w, bias, cout);
      this.folded.add(bn.name);
      out = bn.name;
    }
    const wName = `${layer.name}/W`;
    const bName = `${layer.name}/B`;
    this.inits.push(floatInit(wName, [cout, depthwise ? 1 : cin, kh, kw], Float32Array.from(w)), floatInit(bName, [cout], Float32Array.from(bias)));
    this.nodes.push(
      node('Conv', [src, wName, bName], [out], { kernel_shape: [kh, kw], strides: [sh, sw], pads, dilations: [1, 1], group: depthwise ? cin : 1 })
    );
    this.shapes.set(layer.name, { c: cout, h: outH, w: outW });
    if (out !== layer.name) this.shapes.set(out, { c: cout, h: outH, w: outW });
  }

  private relu(layer: Layer, config: Config, input: string): void {
    const maxValue = config.maxValue as number | null | undefined;
    const src = this.materialise(input);
    if (maxValue === null || maxValue === undefined) {
      this.nodes.push(node('Relu', [src], [layer.name]));
    } else {
      // Opset 18's Clip takes its bounds as inputs, not attributes.
      this.inits.push(floatInit(`${layer.name}/min`, [], Float32Array.of(0)), floatInit(`${layer.name}/max`, [], Float32Array.of(maxValue)));
      this.nodes.push(node('Clip', [src, `${layer.name}/min`, `${layer.name}/max`], [layer.name]));
    }
    this.shapes.set(layer.name, this.spatial(input));
  }

  private add(layer: Layer, inputs: string[]): void {
    if (inputs.length < 2) throw new Error(`MobileNetV2 → ONNX: Add ${layer.name} has ${inputs.length} input(s)`);
    const shape = this.spatial(inputs[0]);
    let acc = this.materialise(inputs[0]);
    for (let i = 1; i < inputs.length; i++) {
      const s = this.spatial(inputs[i]);
      if (s.c !== shape.c || s.h !== shape.h || s.w !== shape.w) throw new Error(`MobileNetV2 → ONNX: Add ${layer.name} has inputs of different shapes`);
      const out = i === inputs.length - 1 ? layer.name : `${layer.name}/sum${i}`;
      this.nodes.push(node('Add', [acc, this.materialise(inputs[i])], [out]));
      acc = out;
    }
    this.shapes.set(layer.name, shape);
  }

  private avgPool(layer: Layer, config: Config, input: string): void {
    if (config.padding !== 'valid') throw new Error(`MobileNetV2 → ONNX: AveragePooling2D ${layer.name} has padding ${String(config.padding)}, only valid is handled`);
    const [ph, pw] = config.poolSize as [number, number];
    const [sh, sw] = (config.strides as [number, number] | null) ?? [ph, pw];
    const s = this.spatial(input);
    this.nodes.push(node('AveragePool', [this.materialise(input)], [layer.name], { kernel_shape: [ph, pw], strides: [sh, sw] }));
    this.shapes.set(layer.name, { c: s.c, h: Math.floor((s.h - ph) / sh) + 1, w: Math.floor((s.w - pw) / sw) + 1 });
  }

  private flatten(layer: Layer, input: string): void {
    const s = this.spatial(input);
    let src = this.materialise(input);
    // Keras flattens NHWC (h, w, c order); NCHW must go back to NHWC first unless the map is 1 × 1.
    if (s.h * s.w > 1) {
      this.nodes.push(node('Transpose', [src], [`${layer.name}/nhwc`], { perm: [0, 2, 3, 1] }));
      src = `${layer.name}/nhwc`;
    }
    this.nodes.push(node('Flatten', [src], [layer.name], { axis: 1 }));
    this.shapes.set(layer.name, { flat: s.c * s.h * s.w });
  }
}

/** TF's padding for one axis: [[before, after], output size]; 'same' puts the odd pixel after. */
function tfPadding(mode: string, size: number, kernel: number, stride: number): [[number, number], number] {
  if (mode === 'valid') return [[0, 0], Math.floor((size - kernel) / stride) + 1];
  if (mode !== 'same') throw new Error(`MobileNetV2 → ONNX: padding ${mode} is not handled`);
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + kernel - size, 0);
  return [[Math.floor(total / 2), total - Math.floor(total / 2)], out];
}

/** A layer's weights by role (the part of the variable name after the last '/': kernel, bias, gamma, …). */
function weightsByRole(layer: Layer): Map<string, { shape: number[]; data: Float32Array }> {
  const values = layer.getWeights() as tf.Tensor[];
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  layer.weights.forEach((v, i) => {
    const role = v.originalName.slice(v.originalName.lastIndexOf('/') + 1).replace(/_\d+$/, '');
    out.set(role, { shape: values[i].shape, data: values[i].dataSync() as Float32Array });
  });
  return out;
}

/** HWIO → OIHW. */
function convToOnnx(k: Float32Array, kh: number, kw: number, cin: number, cout: number): Float64Array {
  const w = new Float64Array(k.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < cin; i++) for (let o = 0; o < cout; o++) w[((o * cin + i) * kh + y) * kw + x] = k[((y * kw + x) * cin + i) * cout + o];
  return w;
}

/** Depthwise [kh, kw, C, M] → [C·M, 1, kh, kw]: output channel c·M + m reads input channel c (TF's order, ONNX's groups). */
function depthwiseToOnnx(k: Float32Array, kh: number, kw: number, c: number, m: number): Float64Array {
  const w = new Float64Array(k.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < c; i++) for (let j = 0; j < m; j++) w[((i * m + j) * kh + y) * kw + x] = k[((y * kw + x) * c + i) * m + j];
  return w;
}

/** Scales `w` (OIHW, `cout` rows) and shifts `bias` in place by the inference-mode BatchNormalization `bn`. */
function foldBatchNorm(bn: Layer, w: Float64Array, bias: Float64Array, cout: number): void {
  const config = bn.getConfig() as Config;
  const axis = config.axis as number | number[];
  if (!(axis === -1 || axis === 3 || (Array.isArray(axis) && axis.length === 1 && (axis[0] === -1 || axis[0] === 3)))) {
    throw new Error(`MobileNetV2 → ONNX: BatchNormalization ${bn.name} normalises axis ${String(axis)}, only the channel axis is handled`);
  }
  const eps = config.epsilon as number;
  const p = weightsByRole(bn);
  const mean = p.get('moving_mean')?.data;
  const variance = p.get('moving_variance')?.data;
  if (!mean || !variance || mean.length !== cout) throw new Error(`MobileNetV2 → ONNX: BatchNormalization ${bn.name} lacks moving statistics for ${cout} channels`);
  const gamma = p.get('gamma')?.data;
  const beta = p.get('beta')?.data;
  const per = w.length / cout;
  for (let o = 0; o < cout; o++) {
    const scale = (gamma ? gamma[o] : 1) / Math.sqrt(variance[o] + eps);
    for (let j = 0; j < per; j++) w[o * per + j] *= scale;
    bias[o] = (bias[o] - mean[o]) * scale + (beta ? beta[o] : 0);
  }
}
