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

  static fromState(state: ClassifierState): SoftmaxClassifier {
    return new SoftmaxClassifier(state);
  }

  /** Trains on `examples` (at least one label); `previous` warm-starts the labels it knows. */
  static train(examples: Example[], previous: SoftmaxClassifier | null = null, opts: TrainOptions = DEFAULT_TRAIN): SoftmaxClassifier {
    if (examples.length === 0) throw new Error("no examples to train on");
    const labels = [...new Set(examples.map((e) => e.label))].sort();
    const dim = examples[0].x.length;
    const { mean, scale } = standardization(examples, dim);
    const xs = examples.map((e) => standardize(e.x, mean, scale));
    const ys = examples.map((e) => labels.indexOf(e.label));
    const weights = labels.map((l) => {
      const prev = previous?.state.labels.indexOf(l) ?? -1;
      return prev >= 0 && previous!.state.weights[prev].length === dim + 1 ? [...previous!.state.weights[prev]] : new Array<number>(dim + 1).fill(0);
    });
    if (labels.length > 1) gradientDescent(xs, ys, weights, opts);
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

function dotWithBias(w: number[], z: Float64Array): number {
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

/** Full-batch gradient descent on the mean cross-entropy plus l2/2 |W|^2 (bias not decayed). */
function gradientDescent(xs: Float64Array[], ys: number[], weights: number[][], opts: TrainOptions): void {
  const n = xs.length, k = weights.length, dim = xs[0].length;
  const grad = weights.map(() => new Float64Array(dim + 1));
  for (let epoch = 0; epoch < opts.epochs; epoch++) {
    for (const g of grad) g.fill(0);
    for (let j = 0; j < n; j++) {
      const z = xs[j];
      const p = softmax(weights.map((w) => dotWithBias(w, z)));
      for (let c = 0; c < k; c++) {
        const d = (p[c] - (ys[j] === c ? 1 : 0)) / n;
        const g = grad[c];
        for (let i = 0; i < dim; i++) g[i] += d * z[i];
        g[dim] += d;
      }
    }
    for (let c = 0; c < k; c++) {
      const w = weights[c], g = grad[c];
      for (let i = 0; i < dim; i++) w[i] -= opts.learningRate * (g[i] + opts.l2 * w[i]);
      w[dim] -= opts.learningRate * g[dim];
    }
  }
}
