// The router's classifier: multinomial logistic regression (softmax) over standardized feature
// vectors, one class per adapter. Small and in TypeScript; retrained from the stored examples
// whenever they change, warm-started from the previous weights (incremental training).

export interface Example {
  label: string;
  x: ArrayLike<number>;
}

export interface ClassifierState {
  labels: string[];
  mean: number[];
  scale: number[]; // 1 / standard deviation per feature
  weights: number[][]; // per label: dim weights then the bias
}

export interface TrainOptions {
  epochs: number;
  learningRate: number;
  l2: number;
}

export const DEFAULT_TRAIN: TrainOptions = { epochs: 300, learningRate: 0.5, l2: 1e-3 };

export class SoftmaxClassifier {
  private constructor(private state: ClassifierState) {}

  /** A stored classifier; throws when its shapes do not fit together (a damaged state file). */
  static fromState(state: ClassifierState): SoftmaxClassifier {
    const numbers = (a: unknown, n: number) => Array.isArray(a) && a.length === n && a.every((v) => typeof v === "number" && Number.isFinite(v));
    const { labels, mean, scale, weights } = state ?? ({} as ClassifierState);
    const dim = Array.isArray(mean) ? mean.length : -1;
    const ok =
      Array.isArray(labels) && labels.length > 0 && labels.every((l) => typeof l === "string") &&
      dim > 0 && numbers(mean, dim) && numbers(scale, dim) &&
      Array.isArray(weights) && weights.length === labels.length && weights.every((w) => numbers(w, dim + 1));
    if (!ok) throw new Error("router classifier state: labels, mean, scale and weights do not fit together");
    return new SoftmaxClassifier(state);
  }

  /** Trains on `examples` (at least one label); `previous` warm-starts the labels it knows.
   *  Yields to the event loop now and then, so a daemon keeps serving while it trains. */
  static async train(examples: Example[], previous: SoftmaxClassifier | null = null, opts: TrainOptions = DEFAULT_TRAIN): Promise<SoftmaxClassifier> {
    if (examples.length === 0) throw new Error("no examples to train on");
    const labels = [...new Set(examples.map((e) => e.label))].sort();
    const dim = examples[0].x.length;
    const { mean, scale } = standardization(examples, dim);
    const xs = new Float64Array(examples.length * dim);
    examples.forEach((e, j) => xs.set(standardize(e.x, mean, scale), j * dim));
    const ys = Int32Array.from(examples, (e) => labels.indexOf(e.label));
    const w = new Float64Array(labels.length * (dim + 1));
    labels.forEach((l, c) => {
      const prev = previous?.state.labels.indexOf(l) ?? -1;
      if (prev >= 0 && previous!.state.weights[prev].length === dim + 1) w.set(previous!.state.weights[prev], c * (dim + 1));
    });
    if (labels.length > 1) await gradientDescent(xs, ys, w, labels.length, dim, opts);
    const weights = labels.map((_, c) => Array.from(w.subarray(c * (dim + 1), (c + 1) * (dim + 1))));
    return new SoftmaxClassifier({ labels, mean, scale, weights });
  }

  get labels(): readonly string[] {
    return this.state.labels;
  }

  get dim(): number {
    return this.state.mean.length;
  }

  toState(): ClassifierState {
    return this.state;
  }

  /** Probability of each label for feature vector x (they sum to 1). */
  scores(x: ArrayLike<number>): Map<string, number> {
    const z = standardize(x, this.state.mean, this.state.scale);
    const p = softmax(this.state.weights.map((w) => dotWithBias(w, z)));
    return new Map(this.state.labels.map((l, i) => [l, p[i]]));
  }
}

function standardization(examples: Example[], dim: number): { mean: number[]; scale: number[] } {
  const mean = new Array<number>(dim).fill(0);
  const sq = new Array<number>(dim).fill(0);
  for (const e of examples) for (let i = 0; i < dim; i++) mean[i] += e.x[i] / examples.length;
  for (const e of examples) for (let i = 0; i < dim; i++) sq[i] += (e.x[i] - mean[i]) ** 2 / examples.length;
  // A feature constant over the examples keeps scale 1 (no division by zero).
  const scale = sq.map((v) => (v > 1e-12 ? 1 / Math.sqrt(v) : 1));
  return { mean, scale };
}

function standardize(x: ArrayLike<number>, mean: number[], scale: number[]): Float64Array {
  const z = new Float64Array(mean.length);
  for (let i = 0; i < mean.length; i++) z[i] = (x[i] - mean[i]) * scale[i];
  return z;
}

function dotWithBias(w: ArrayLike<number>, z: Float64Array): number {
  let s = w[z.length];
  for (let i = 0; i < z.length; i++) s += w[i] * z[i];
  return s;
}

function softmax(v: number[]): number[] {
  const m = Math.max(...v);
  const e = v.map((x) => Math.exp(x - m));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / sum);
}

/** Full-batch gradient descent on the mean cross-entropy plus l2/2 |W|^2 (bias not decayed).
 *  w holds k rows of dim weights then the bias. */
async function gradientDescent(xs: Float64Array, ys: Int32Array, w: Float64Array, k: number, dim: number, opts: TrainOptions): Promise<void> {
  const n = ys.length, row = dim + 1;
  const grad = new Float64Array(w.length);
  const logit = new Float64Array(k);
  let lastYield = performance.now();
  for (let epoch = 0; epoch < opts.epochs; epoch++) {
    grad.fill(0);
    for (let j = 0; j < n; j++) {
      const x = j * dim;
      let max = -Infinity;
      for (let c = 0; c < k; c++) {
        let s = w[c * row + dim];
        for (let i = 0; i < dim; i++) s += w[c * row + i] * xs[x + i];
        logit[c] = s;
        if (s > max) max = s;
      }
      let sum = 0;
      for (let c = 0; c < k; c++) sum += (logit[c] = Math.exp(logit[c] - max));
      for (let c = 0; c < k; c++) {
        const d = (logit[c] / sum - (ys[j] === c ? 1 : 0)) / n;
        for (let i = 0; i < dim; i++) grad[c * row + i] += d * xs[x + i];
        grad[c * row + dim] += d;
      }
    }
    for (let c = 0; c < k; c++) {
      for (let i = 0; i < dim; i++) w[c * row + i] -= opts.learningRate * (grad[c * row + i] + opts.l2 * w[c * row + i]);
      w[c * row + dim] -= opts.learningRate * grad[c * row + dim];
    }
    if (performance.now() - lastYield > 20) {
      await new Promise((resolve) => setImmediate(resolve));
      lastYield = performance.now();
    }
  }
}
