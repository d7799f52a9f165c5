// Time steps: a module called many times in a row (an RNN cell unrolled over 200 steps, as
// truncated BPTT does) has one scope for all its calls, so folding by scope cannot separate
// the calls (and folding them all into one box would draw a cycle). Here the forward order of
// ops is searched for its longest run of a repeated consecutive pattern (op and scope); each
// repetition becomes a synthetic scope "@t<k>" ("time step k") that repeats "@t0", so the
// folding draws "time step x 200" and opens into steps, then into a step's modules.
import type { GDoc, GNode, GScope } from './types';

/** Below this many nodes the whole graph is laid out in about a second: draw it as it is. */
export const STEP_FOLD_MIN = 1000;
const MIN_REPS = 3;
const STEP = '@t';

export interface Steps {
  period: number; // ops per time step
  reps: number;
  first: number; // seq of the first op of step 0
}

/** Whether a scope name is a synthetic time step (or inside one). */
export function isStepScope(s: string): boolean {
  return s.startsWith(STEP);
}

/** The longest run of a consecutive repeated op pattern: [start index, period, reps], or null. */
export function findRun(sig: Int32Array): [number, number, number] | null {
  const n = sig.length;
  // candidate periods: gaps between consecutive occurrences of one signature
  const last = new Map<number, number>();
  const votes = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const p = last.get(sig[i]);
    if (p !== undefined) votes.set(i - p, (votes.get(i - p) || 0) + 1);
    last.set(sig[i], i);
  }
  const cands = [...votes.entries()].filter(([p, v]) => v >= p && p * MIN_REPS <= n)
    .sort((a, b) => b[1] - a[1]).slice(0, 12).map(([p]) => p);
  let best: [number, number, number] | null = null;
  let bestCover = 0;
  for (const p of cands) {
    let run = 0;
    for (let i = 0; i + p < n; i++) {
      if (sig[i] === sig[i + p]) {
        run++;
        if (i + p + 1 === n || sig[i + 1] !== sig[i + 1 + p]) {
          const start = i - run + 1;
          const reps = Math.floor((run + p) / p);
          const cover = reps * p;
          if (reps >= MIN_REPS && (cover > bestCover || (cover === bestCover && best && p < best[1]))) {
            best = [start, p, reps];
            bestCover = cover;
          }
        }
      } else run = 0;
    }
  }
  return best;
}

const cache = new WeakMap<GDoc, { n: number; e: number; s: unknown; out: GDoc; steps: Steps | null }>();

/** ``doc`` as the folding sees it: nodes of a long repeated run get a time-step scope.
 *  Nodes are views of the originals (their state and gradients stay live); returns ``doc``
 *  itself when the graph is small or nothing repeats. */
export function withSteps(doc: GDoc): GDoc {
  const c = cache.get(doc);
  if (c && c.n === doc.nodes.length && c.e === doc.edges.length && c.s === doc.scopes) return c.out;
  let out = doc;
  let steps: Steps | null = null;
  if (doc.nodes.length >= STEP_FOLD_MIN) {
    const ops = doc.nodes.filter(n => n.kind !== 'leaf').sort((a, b) => a.seq - b.seq);
    // an op's signature: op, scope and the leaves it reads (two unscoped LSTM cells differ
    // by their weights), so one time step is one call of every cell, not half of one
    const kindOf = new Map(doc.nodes.map(n => [n.id, n.kind]));
    const leafIn = new Map<string, string>();
    for (const e of doc.edges) {
      if (kindOf.get(e.src) === 'leaf') leafIn.set(e.dst, (leafIn.get(e.dst) || '') + ',' + e.src);
    }
    const ids = new Map<string, number>();
    const sig = new Int32Array(ops.length);
    ops.forEach((n, i) => {
      const k = n.op + '\u0000' + (n.scope || '') + '\u0000' + (leafIn.get(n.id) || '');
      let v = ids.get(k);
      if (v === undefined) ids.set(k, (v = ids.size));
      sig[i] = v;
    });
    const run = findRun(sig);
    // only a run that is most of the graph: a loop inside one block (attention heads) stays
    if (run && run[1] * run[2] * 4 >= ops.length) {
      const [start, p, reps] = run;
      steps = { period: p, reps, first: ops[start].seq };
      const scopeOf = new Map<string, string>();
      for (let k = 0; k < reps; k++) {
        for (let j = 0; j < p; j++) {
          const n = ops[start + k * p + j];
          scopeOf.set(n.id, STEP + k + (n.scope ? '.' + n.scope : ''));
        }
      }
      const nodes = doc.nodes.map(n => {
        const s = scopeOf.get(n.id);
        if (s === undefined) return n;
        const v = Object.create(n) as GNode;
        Object.defineProperty(v, 'scope', { value: s, enumerable: true });
        return v;
      });
      const types = new Map((doc.scopes || []).map(s => [s.name, s.type]));
      const extra: GScope[] = [];
      const seen = new Set<string>();
      for (const s of scopeOf.values()) {
        const parts = s.split('.');
        for (let i = 1; i <= parts.length; i++) {
          const name = parts.slice(0, i).join('.');
          if (seen.has(name)) continue;
          seen.add(name);
          const top = i === 1;
          const k = Number(parts[0].slice(STEP.length));
          extra.push({
            name, parent: top ? null : parts.slice(0, i - 1).join('.'),
            type: top ? 'time step' : types.get(parts.slice(1, i).join('.')) || '',
            nodes: 0, repeat_of: top && k > 0 ? STEP + '0' : null
          });
        }
      }
      out = { ...doc, nodes, scopes: [...(doc.scopes || []), ...extra] };
    }
  }
  cache.set(doc, { n: doc.nodes.length, e: doc.edges.length, s: doc.scopes, out, steps });
  return out;
}

/** The time steps found in ``doc`` (after ``withSteps``), for tests and the status line. */
export function stepsOf(doc: GDoc): Steps | null {
  const c = cache.get(doc);
  return c ? c.steps : null;
}
