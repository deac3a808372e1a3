// Envoy's runtime: layered key/value overrides (static layers from the bootstrap, disk layers, and
// the admin layer set through /runtime_modify). Features read their runtime keys with a default;
// a missing or malformed value yields the default, never an error.

export type RuntimeLayerKind = 'static' | 'disk' | 'admin' | 'rtds';

export interface RuntimeLayerView {
  readonly name: string;
  readonly values: Readonly<Record<string, string>>;
  /** Static when absent. */
  readonly kind?: RuntimeLayerKind;
}

export interface FractionalPercentValue {
  readonly numerator: number;
  /** HUNDRED, TEN_THOUSAND or MILLION. */
  readonly denominator: 'HUNDRED' | 'TEN_THOUSAND' | 'MILLION';
}

const DENOMINATORS = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 } as const;

export function denominatorValue(d: string): number {
  return DENOMINATORS[d as keyof typeof DENOMINATORS] ?? 100;
}

/** Envoy's error when /runtime_modify meets a runtime without an admin layer (answered with 503). */
export const NO_ADMIN_LAYER = 'No admin layer specified';

export interface RuntimeOptions {
  /**
   * Append an `admin` layer when `layers` has none (the default, for runtimes built in code).
   * The bootstrap's layered_runtime says exactly which layers exist: buildRuntime passes false.
   */
  readonly implicitAdminLayer?: boolean;
}

interface Layer {
  readonly name: string;
  readonly kind: RuntimeLayerKind;
  values: Record<string, string>;
}

export class Runtime {
  readonly #layers: Layer[];
  readonly #admin: Layer | undefined;
  /** Merged view, later layers win. */
  #merged = new Map<string, string>();
  readonly #closers: Array<() => void> = [];
  #generation = 0;

  constructor(layers: readonly RuntimeLayerView[] = [], admin: Readonly<Record<string, string>> = {}, opts: RuntimeOptions = {}) {
    this.#layers = layers.map((l) => ({ name: l.name, kind: l.kind ?? 'static', values: { ...l.values } }));
    let a = this.#layers.find((l) => l.kind === 'admin');
    if (!a && opts.implicitAdminLayer !== false) this.#layers.push((a = { name: 'admin', kind: 'admin', values: {} }));
    this.#admin = a;
    if (a) for (const [k, v] of Object.entries(admin)) if (v !== '') a.values[k] = v;
    this.#rebuild();
  }

  #rebuild(): void {
    const m = new Map<string, string>();
    for (const l of this.#layers) for (const [k, v] of Object.entries(l.values)) m.set(k, v);
    this.#merged = m;
    this.#generation++;
  }

  /** Bumped on every change (admin layer, disk reload): lets readers cache derived values. */
  get generation(): number {
    return this.#generation;
  }

  get hasAdminLayer(): boolean {
    return this.#admin !== undefined;
  }

  /**
   * Admin layer changes (`/runtime_modify`): an empty value removes the key from that layer, so
   * lower layers show through again. Throws NO_ADMIN_LAYER when the runtime has no admin layer.
   */
  setAdmin(values: Readonly<Record<string, string>>): void {
    const a = this.#admin;
    if (!a) throw new Error(NO_ADMIN_LAYER);
    for (const [k, v] of Object.entries(values)) {
      if (v === '') delete a.values[k];
      else a.values[k] = v;
    }
    this.#rebuild();
  }

  adminValues(): Record<string, string> {
    return { ...this.#admin?.values };
  }

  /** Replaces a (disk or RTDS) layer's values, e.g. after its directory was swapped. */
  setLayerValues(name: string, values: Readonly<Record<string, string>>): void {
    const l = this.#layers.find((x) => x.name === name && x.kind !== 'admin');
    if (!l) return;
    l.values = { ...values };
    this.#rebuild();
  }

  /** Layers lowest priority first, with their current values (what `/runtime` shows). */
  layers(): RuntimeLayerView[] {
    return this.#layers.map((l) => ({ name: l.name, kind: l.kind, values: { ...l.values } }));
  }

  entries(): ReadonlyMap<string, string> {
    return this.#merged;
  }

  /** Runs `fn` on close() (stops disk-layer watchers). */
  onClose(fn: () => void): void {
    this.#closers.push(fn);
  }

  close(): void {
    for (const c of this.#closers.splice(0)) c();
  }

  get(key: string): string | undefined {
    return this.#merged.get(key);
  }

  getInteger(key: string, fallback: number): number {
    const v = this.#merged.get(key);
    if (v === undefined) return fallback;
    const n = Number(v);
    return Number.isInteger(n) && n >= 0 ? n : fallback;
  }

  getDouble(key: string, fallback: number): number {
    const v = this.#merged.get(key);
    if (v === undefined) return fallback;
    const n = Number(v);
    return Number.isFinite(n) ? n : fallback;
  }

  getBoolean(key: string, fallback: boolean): boolean {
    const v = this.#merged.get(key);
    return v === 'true' ? true : v === 'false' ? false : fallback;
  }

  /**
   * Envoy's `featureEnabled(key, FractionalPercent)`: the key may hold an integer percentage
   * (out of 100) or the default's denominator applies; one random draw per call.
   */
  featureEnabled(key: string | undefined, dflt: FractionalPercentValue, random: number = Math.random()): boolean {
    const { numerator, denominator } = this.fractionalPercent(key, dflt);
    const d = denominatorValue(denominator);
    return Math.floor(random * d) < Math.min(numerator, d);
  }

  fractionalPercent(key: string | undefined, dflt: FractionalPercentValue): FractionalPercentValue {
    if (!key) return dflt;
    const v = this.#merged.get(key);
    if (v === undefined) return dflt;
    const n = Number(v);
    if (Number.isFinite(n) && n >= 0) return { numerator: Math.floor(n), denominator: 'HUNDRED' };
    return dflt;
  }
}
