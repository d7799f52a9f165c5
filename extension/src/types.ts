// The graph document (schema v1, docs/graph-schema.md). The front end only reads it.

export interface TensorMeta {
  shape: number[];
  dtype: string;
  device?: string;
  requires_grad?: boolean;
  name?: string;
}

export interface Heat {
  rows: number;
  cols: number;
  values: number[];
  min: number;
  max: number;
}

export interface Summary {
  shape: number[];
  dtype: string;
  device: string;
  count: number;
  mean: number;
  std: number;
  min: number;
  max: number;
  norm: number;
  nan: number;
  inf: number;
  zeros: number;
  hist?: { edges: number[]; counts: number[] } | null;
  preview?: unknown;
  heat?: Heat | null;
}

export type NodeState = 'idle' | 'pending' | 'ready' | 'current' | 'done';

export interface GNode {
  id: string;
  seq: number;
  op: string;
  kind: 'op' | 'leaf' | 'output';
  label: string;
  scope: string;
  source: { file: string; line: number; text?: string; cell?: number | null } | null;
  inputs: TensorMeta[];
  outputs: TensorMeta[];
  saved: TensorMeta[];
  param: string | null;
  state: NodeState;
  grad: { in: (Summary | null)[]; out: (Summary | null)[] } | null;
  time_us: number | null;
  breakpoint?: boolean;
  key?: string; // a recorder step: the node's key across training steps
  record?: Record<string, number | null>; // a recorder step: every statistic of the node
}

export interface GEdge {
  src: string;
  dst: string;
  slot: number;
}

export interface GScope {
  name: string;
  parent: string | null;
  type: string;
  nodes: number;
  repeat_of: string | null;
}

export interface GStatus {
  step: number;
  total: number;
  current: string | null;
  done: boolean;
  text: string;
}

export interface GDoc {
  schema: string;
  version: number;
  graph_id: string;
  rev: number;
  nodes: GNode[];
  edges: GEdge[];
  scopes: GScope[];
  status: GStatus | null;
  breakpoints?: string[];
  marks?: Record<string, string>; // node id -> fill colour (explain: cause and chain; diff)
  highlight?: string[];
  caption?: string; // a sentence shown above the drawing (explain's reason)
  legend?: [string, string][]; // [colour, text] for the marks
  recorder?: RecorderInfo; // a Recorder's step: the slider's steps
}

export interface RecorderInfo {
  steps: number[];
  step: number;
}

export interface History {
  key: string;
  steps: number[];
  series: Record<string, (number | null)[]>;
}

export interface GDiff {
  schema: string;
  version: number;
  graph_id: string;
  rev: number;
  add_nodes?: GNode[];
  add_edges?: GEdge[];
  scopes?: GScope[];
  remove_nodes?: string[];
  remove_edges?: GEdge[];
  update?: (Partial<GNode> & { id: string })[];
  status?: GStatus | null;
  breakpoints?: string[];
}

export interface Metrics {
  loss?: number[];
  grad_norms?: Record<string, number>;
  iteration?: number;
  series?: Record<string, number[]>;
}

/** What a view needs of its host (the widget, or the side panel's mirror). */
export interface Host {
  mode: 'graph' | 'stepper' | 'live' | 'mirror';
  send(msg: Record<string, unknown>): void;
  fetchEngine(): Promise<string>;
  foldLimit?: number;
}

/** One drawing's cost (``info().timings``). */
export interface Timing {
  layout_ms: number;
  draw_ms: number;
  items: number;
  at: number;
}
