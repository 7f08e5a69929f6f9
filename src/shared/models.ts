// The model catalogue: every trainable model, its hyper-parameters with defaults and bounds, as plain
// data. The API's input schemas are built from it (src/shared/api.ts) and the UI renders its forms from it,
// so a default lives in exactly one place. No dependencies: the renderer imports this file directly.

export type ModelKind =
  | 'popularity'
  | 'sasrec'
  | 'gru4rec'
  | 'nextitnet'
  | 'bpr'
  | 'ncf'
  | 'sasrec_id_v'
  | 'youtube_id_v'
  | 'tallrec'
  | 'llara'
  | 'e4srec'
  | 'vip5'
  | 'almostrec';

/**
 * Table 2's groups: the LLM recommenders split as in the paper into Text + Sequential (TALLRec, LLaRA,
 * E4SRec) and Text + Visual + Sequential (VIP5, ALMOSTREC).
 */
export type ModelFamily = 'non-sequential' | 'sequential' | 'visual-sequential' | 'text-sequential-llm' | 'multimodal-llm';

export interface HyperParameter {
  key: string;
  label: string;
  integer: boolean;
  min: number;
  max: number;
  default: number;
  step?: number;
  hint?: string;
  /** The only values allowed (within min/max), e.g. a pooling size; absent: any value in bounds. */
  choices?: readonly number[];
  /** What each of `choices` means, in the same order (a form shows these instead of the bare numbers). */
  choiceLabels?: readonly string[];
  /** A 0/1 switch (a form shows a checkbox). */
  toggle?: boolean;
  /** The value is the catalog id of another entry (0 = none chosen yet), so a form offers a picker. */
  refersTo?: 'backbone' | 'sequential-run';
  /** The value is a bitmask: bit i (value 2^i) is named bits[i], so a form offers one checkbox per bit. */
  bits?: readonly string[];
}

export interface ModelDescriptor {
  kind: ModelKind;
  label: string;
  family: ModelFamily;
  description: string;
  /** Where the defaults come from. */
  reference: string;
  /** Trained epoch by epoch (progress chart, early stopping, resume). */
  iterative: boolean;
  /** Needs frozen per-item image features. */
  usesImages: boolean;
  params: HyperParameter[];
}

/** Hyper-parameter constructors, shared with the backbone catalogue (backbones.ts). */
export const int = (key: string, label: string, def: number, min: number, max: number, hint?: string): HyperParameter => ({
  key,
  label,
  integer: true,
  min,
  max,
  default: def,
  hint
});
export const real = (key: string, label: string, def: number, min: number, max: number, step: number, hint?: string): HyperParameter => ({
  key,
  label,
  integer: false,
  min,
  max,
  default: def,
  step,
  hint
});

/** Every iterative model trains with these (Adam, early stopping on validation NDCG@10). */
function training(epochs: number, batchSize: number, learningRate: number, patience = 10): HyperParameter[] {
  return [
    int('epochs', 'Epochs', epochs, 1, 1000),
    int('batchSize', 'Batch size', batchSize, 1, 65536),
    real('learningRate', 'Learning rate', learningRate, 1e-6, 1, 0.0001),
    int('seed', 'Seed', 42, 0, 2 ** 31 - 1),
    int('evalEvery', 'Eval every', 1, 1, 1000, 'epochs between validations'),
    int('patience', 'Patience', patience, 1, 1000, 'validations without gain')
  ];
}

/** An ablation switch: 0 or 1. */
const flag = (key: string, label: string, def: 0 | 1, hint: string): HyperParameter => ({ ...int(key, label, def, 0, 1, hint), toggle: true });

/**
 * LoRA target modules of the language model as a bitmask (the catalogue holds numbers only), in the order
 * of TEXT_LORA_TARGETS (src/core/backbone/lora.ts). DESIGN §5's default q,v is 1 + 4 = 5.
 */
export const LORA_TARGET_BITS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
/** The checkbox labels of LORA_TARGET_BITS (same order). */
const LORA_TARGET_LABELS = LORA_TARGET_BITS.map((t) => t.replace(/_proj$/, ''));

/**
 * The LLM recommenders' optimisation (Adam with warm-up; few epochs, each over every training target). The
 * baselines keep 10 epochs and a constant rate; ALMOSTREC's own defaults were chosen on validation (README).
 */
function llmTraining(epochs = 10, lrSchedule: 0 | 1 = 0, patience = 3): HyperParameter[] {
  return [
    ...training(epochs, 16, 1e-3, patience),
    int('warmupSteps', 'Warm-up steps', 20, 0, 100000, 'linear learning-rate warm-up (optimizer steps)'),
    int('gradAccum', 'Gradient accumulation', 1, 1, 64, 'batches per optimizer step'),
    {
      ...int('lrSchedule', 'LR schedule', lrSchedule, 0, 1, 'after the warm-up: 0 constant; 1 cosine decay to 10 % of the peak at the run\'s last update'),
      choices: [0, 1],
      choiceLabels: ['constant (0)', 'cosine (1)']
    }
  ];
}

const backboneReference: HyperParameter = { ...int('backboneId', 'Backbone id', 0, 0, 2 ** 31 - 1, 'required: a finished backbone'), refersTo: 'backbone' };

/** What a model on a backbone that reads item IDs needs: the backbone and the sequential run whose item table is M. */
const backboneReferences: HyperParameter[] = [
  backboneReference,
  {
    ...int('seqRunId', 'Sequential run id', 0, 0, 2 ** 31 - 1, 'required: a finished SASRec or GRU4Rec run on this dataset (its item table is M)'),
    refersTo: 'sequential-run'
  }
];

/** LoRA on the language model (DESIGN §5: q,v rank 8, α 16, dropout 0.05). */
const loraParams: HyperParameter[] = [
  int('loraRank', 'LoRA rank', 8, 1, 256),
  real('loraAlpha', 'LoRA alpha', 16, 0.01, 4096, 1),
  real('loraDropout', 'LoRA dropout', 0.05, 0, 0.9, 0.01),
  { ...int('loraTargets', 'LoRA targets', 5, 1, 127, 'the config stores a bitmask: q 1, k 2, v 4, o 8, gate 16, up 32, down 64'), bits: LORA_TARGET_LABELS }
];

const sasrecArchitecture: HyperParameter[] = [
  int('maxLen', 'Max length', 200, 2, 1000, 'history window L'),
  int('hiddenSize', 'Hidden size', 64, 4, 1024),
  int('numBlocks', 'Blocks', 2, 1, 12),
  int('numHeads', 'Heads', 1, 1, 16),
  real('dropout', 'Dropout', 0.2, 0, 0.9, 0.05),
  real('beta2', 'Adam β2', 0.98, 0, 0.99999, 0.001)
];

export const MODEL_CATALOG: readonly ModelDescriptor[] = [
  {
    kind: 'popularity',
    label: 'Popularity',
    family: 'non-sequential',
    description: 'Ranks items by their training interactions; the floor every model must beat.',
    reference: 'most-popular baseline',
    iterative: false,
    usesImages: false,
    params: []
  },
  {
    kind: 'sasrec',
    label: 'SASRec',
    family: 'sequential',
    description: 'Self-attentive sequential recommender, cross-entropy over all items at every position.',
    reference: 'Kang & McAuley 2018; DESIGN.md §8 (RecBole-style)',
    iterative: true,
    usesImages: false,
    params: [...training(200, 128, 1e-3), ...sasrecArchitecture]
  },
  {
    kind: 'gru4rec',
    label: 'GRU4Rec',
    family: 'sequential',
    description: 'GRU over the item sequence, cross-entropy over all items; its item table can serve as ALMOSTREC\'s M.',
    reference: 'Hidasi et al. 2016; RecBole gru4rec.yaml (embedding 64, hidden 128, 1 layer, dropout 0.3, CE)',
    iterative: true,
    usesImages: false,
    params: [
      ...training(200, 128, 1e-3),
      int('maxLen', 'Max length', 50, 2, 1000, 'history window L'),
      int('embeddingSize', 'Embedding size', 64, 4, 1024),
      int('hiddenSize', 'Hidden size', 128, 4, 1024),
      int('numLayers', 'GRU layers', 1, 1, 4),
      real('dropout', 'Dropout', 0.3, 0, 0.9, 0.05)
    ]
  },
  {
    kind: 'nextitnet',
    label: 'NextItNet',
    family: 'sequential',
    description: 'Stacked dilated causal convolutions in residual blocks (each convolving at d and 2d), cross-entropy over all items.',
    reference: 'Yuan et al. 2019; RecBole nextitnet.yaml (embedding 64, kernel 3, 5 blocks, dilations [1, 4])',
    iterative: true,
    usesImages: false,
    params: [
      ...training(200, 128, 1e-3),
      int('maxLen', 'Max length', 50, 2, 1000, 'history window L'),
      int('embeddingSize', 'Embedding size', 64, 4, 1024),
      int('kernelSize', 'Kernel size', 3, 2, 9),
      int('numBlocks', 'Block repetitions', 5, 1, 16, 'dilations [1, 4] repeated: 2 residual blocks each')
    ]
  },
  {
    kind: 'bpr',
    label: 'BPR-MF',
    family: 'non-sequential',
    description: 'Matrix factorisation trained with the BPR pairwise loss and one sampled negative per positive.',
    reference: 'Rendle et al. 2009; RecBole bpr.yaml (embedding 64, batch 2048, lr 1e-3)',
    iterative: true,
    usesImages: false,
    params: [...training(200, 2048, 1e-3), int('embeddingSize', 'Embedding size', 64, 4, 1024)]
  },
  {
    kind: 'ncf',
    label: 'NCF (NeuMF)',
    family: 'non-sequential',
    description: 'GMF and MLP towers fused by a linear layer, binary cross-entropy with sampled negatives.',
    reference: 'He et al. 2017; RecBole neumf.yaml (MF 64, MLP 64 → [128, 64], dropout 0.1)',
    iterative: true,
    usesImages: false,
    params: [
      ...training(200, 2048, 1e-3),
      int('mfEmbeddingSize', 'GMF embedding', 64, 4, 1024),
      int('mlpEmbeddingSize', 'MLP embedding', 64, 4, 1024),
      real('dropout', 'Dropout', 0.1, 0, 0.9, 0.05),
      int('negatives', 'Negatives per positive', 4, 1, 64)
    ]
  },
  {
    kind: 'sasrec_id_v',
    label: 'SASRec_ID+V',
    family: 'visual-sequential',
    description: 'SASRec whose item representation adds a learned projection of frozen image features to the ID embedding.',
    reference: 'MicroLens benchmark (Ni et al. 2023), ID + visual side information',
    iterative: true,
    usesImages: true,
    params: [...training(200, 128, 1e-3), ...sasrecArchitecture]
  },
  {
    kind: 'youtube_id_v',
    label: 'YouTube_ID+V',
    family: 'visual-sequential',
    description: 'YouTube DNN: mean-pooled history of ID + projected image features → MLP → softmax over items.',
    reference: 'Covington et al. 2016; MicroLens benchmark ID + V variant',
    iterative: true,
    usesImages: true,
    params: [
      ...training(200, 128, 1e-3),
      int('maxLen', 'Max length', 50, 2, 1000, 'history window L'),
      int('embeddingSize', 'Embedding size', 64, 4, 1024),
      int('hiddenSize', 'MLP hidden size', 128, 4, 4096),
      real('dropout', 'Dropout', 0.2, 0, 0.9, 0.05)
    ]
  },
  {
    kind: 'tallrec',
    label: 'TALLRec',
    family: 'text-sequential-llm',
    description:
      'Instruction tuning with LoRA: the LLM reads the history\'s titles and learns to write the next title with its own language-model head; ' +
      'every item is ranked by the likelihood of its title (a prefix tree of all titles, the prompt encoded once). Text only, no IDs.',
    reference: 'Bao et al. 2023 (TALLRec), amended for sequential recommendation as in ALMOSTREC §5 (DESIGN.md §6)',
    iterative: true,
    usesImages: false,
    params: [
      ...llmTraining(),
      backboneReference,
      int('historyLength', 'History length', 10, 1, 200, 'L: the titles of the last L items'),
      int('maxTitleTokens', 'Max title tokens', 6, 1, 64, 'per title, in the prompt and as the answer'),
      ...loraParams
    ]
  },
  {
    kind: 'llara',
    label: 'LLaRA',
    family: 'text-sequential-llm',
    description:
      'Hybrid prompts: each history and candidate item is its title followed by one token projected from the sequential model\'s frozen item embedding (a 2-layer MLP); ' +
      'the LLM learns to write the next item\'s title among listed candidates, with a curriculum from text-only to hybrid prompts. Trains LoRA and the projector; ' +
      'every item is ranked by the likelihood of its title.',
    reference: 'Liao et al. 2024 (LLaRA), on the workbench backbone with the LoRA of the other LLM baselines (DESIGN.md §6)',
    iterative: true,
    usesImages: false,
    params: [
      ...llmTraining(),
      ...backboneReferences,
      int('historyLength', 'History length', 10, 1, 200, 'L: the last L items before the target'),
      int('candidates', 'Candidates', 20, 2, 200, 'items the prompt lists: the target and unseen items when training and in LLaRA\'s HR@1; unseen items alone when ranking'),
      int('samplesPerUser', 'Samples per user', 1, 1, 1000, 'targets drawn per user per epoch (one target per example)'),
      int('maxTitleTokens', 'Max title tokens', 6, 1, 64, 'per title, in the prompt and as the answer'),
      int('curriculumEpochs', 'Curriculum epochs', 10, 0, 1000, 'hybrid-prompt probability rises from 0 to 1 over these epochs (at most the run\'s epochs); 0: hybrid from the start'),
      ...loraParams
    ]
  },
  {
    kind: 'e4srec',
    label: 'E4SRec',
    family: 'text-sequential-llm',
    description:
      'The LLM reads an instruction followed by the history as ID tokens (the sequential model\'s frozen item embeddings through a linear input adapter); ' +
      'a linear head over all items reads the last hidden state. Trains LoRA, the adapter and the head; no images, no titles.',
    reference: 'Li et al. 2023 (E4SRec), on the workbench backbone with ALMOSTREC\'s optimisation and LoRA (DESIGN.md §6)',
    iterative: true,
    usesImages: false,
    params: [
      ...llmTraining(),
      ...backboneReferences,
      int('historyLength', 'History length', 20, 1, 200, 'L: the last L items before the target'),
      ...loraParams,
      flag('initOutputFromIds', 'Head from IDs', 1, '1: the head starts as (M·W)ᵀ scaled to nn.Linear’s spread; 0: nn.Linear init')
    ]
  },
  {
    kind: 'vip5',
    label: 'VIP5',
    family: 'multimodal-llm',
    description:
      'Multimodal prompts: each history item is its ID written as text (item_<id>) followed by the backbone\'s visual tokens of its image; ' +
      'the LLM learns to write the next item\'s ID with its own language-model head, LoRA being the adapter (VIP5 tunes adapters). ' +
      'Every item is ranked by the likelihood of its ID (constrained to valid IDs, the prompt encoded once).',
    reference: 'Geng et al. 2023 (VIP5), on the workbench backbone with the LoRA of the other LLM baselines (DESIGN.md §6)',
    iterative: true,
    usesImages: true,
    params: [
      ...llmTraining(),
      backboneReference,
      int('historyLength', 'History length', 10, 1, 200, 'L: the last L items (ID and image) before the target'),
      {
        ...int('visualTokens', 'Visual tokens per image', 1, 0, 9, 'k: 1, 4, 9, or 0 for all'),
        choices: [0, 1, 4, 9],
        choiceLabels: ['all (0)', '1', '4', '9']
      },
      ...loraParams,
      flag('useImages', 'Use images', 1, '0: no visual tokens (ablation)')
    ]
  },
  {
    kind: 'almostrec',
    label: 'ALMOSTREC',
    family: 'multimodal-llm',
    description:
      'A LLaVA-family backbone reads the history as visual tokens, a prompt listing the titles and the sequential model\'s item embeddings (through W^B); ' +
      'the last hidden state scores every item through W^T. Trains LoRA, W^B and W^T; everything else is frozen.',
    reference: 'ALMOSTREC (ICMR 2025, §4, Algorithm 1); DESIGN.md §5 (LoRA q,v rank 8, α 16, dropout 0.05; L = 20; k = 1)',
    iterative: true,
    usesImages: true,
    params: [
      ...llmTraining(3, 1, 1),
      ...backboneReferences,
      int('historyLength', 'History length', 20, 1, 200, 'L: the last L items before the target'),
      {
        ...int('visualTokens', 'Visual tokens per image', 1, 0, 9, 'k: 1, 4, 9, or 0 for all'),
        choices: [0, 1, 4, 9],
        choiceLabels: ['all (0)', '1', '4', '9']
      },
      int('samplesPerUser', 'Samples per user', 1, 1, 1000, 'concat layout: targets drawn per user per epoch (the interleaved layout trains every target once)'),
      int('maxTitleTokens', 'Max title tokens', 4, 1, 64, 'per title in the prompt'),
      int('promptTitles', 'Prompt titles', 3, 0, 200, 'newest titles the prompt lists; 0: all L'),
      real('idDropout', 'ID-token dropout', 0.3, 0, 0.9, 0.05, 'dropout on the ID tokens W^B·M(item) while training (SASRec drops its item embeddings at 0.2)'),
      flag('windowPhase', 'Random window phase', 1, 'interleaved layout: 1 shifts each user\'s windows by a fresh random offset every epoch, so a target is not always predicted from the same context'),
      ...loraParams,
      flag('useLora', 'Use LoRA', 1, '0: train W^B and W^T only'),
      flag('useImages', 'Use images', 1, '0: no visual tokens'),
      flag('useText', 'Use text', 1, '0: no prompt tokens'),
      flag('pretrainedIds', 'Pretrained IDs', 1, '0: M replaced by a frozen random N(0, 0.02) table'),
      flag('initOutputFromIds', 'W^T from IDs', 1, '1: W^T starts as (M·W^B)ᵀ scaled to nn.Linear’s spread; 0: nn.Linear init'),
      {
        ...int('layout', 'Layout', 1, 0, 1, '0: concat V, T, S (eq. 1), last position trained; 1: interleaved per item, every ID token trained'),
        choices: [0, 1],
        choiceLabels: ['concat V, T, S (0)', 'interleaved, every position (1)']
      }
    ]
  }
];

export const MODEL_KINDS = MODEL_CATALOG.map((m) => m.kind) as readonly ModelKind[];

export function modelDescriptor(kind: ModelKind): ModelDescriptor {
  const d = MODEL_CATALOG.find((m) => m.kind === kind);
  if (!d) throw new Error(`Unknown model "${kind}"`);
  return d;
}

/** Models built on a backbone and a sequential run's item table (their configs refer to both). */
export function usesBackbone(kind: ModelKind): boolean {
  return modelDescriptor(kind).params.some((p) => p.refersTo === 'backbone');
}

/** The LLM recommenders (Table 2's two LLM groups): what they read is a prompt the case study can show. */
export const LLM_FAMILIES: readonly ModelFamily[] = ['text-sequential-llm', 'multimodal-llm'];

/** A kind of the LLM families; false for a kind the catalogue does not know (a run of another build). */
export function isLlmKind(kind: string): boolean {
  const d = MODEL_CATALOG.find((m) => m.kind === kind);
  return d !== undefined && LLM_FAMILIES.includes(d.family);
}

/** Defaults of a model's hyper-parameters. */
export function defaultConfig(kind: ModelKind): Record<string, number> {
  return Object.fromEntries(modelDescriptor(kind).params.map((p) => [p.key, p.default]));
}
