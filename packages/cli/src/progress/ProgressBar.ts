import cliProgress from 'cli-progress';

/** Where a progress bar may draw: a terminal stream (process.stderr), or a stand-in in tests. */
export interface ProgressStream {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(chunk: string): boolean;
}

/** Progress of one piece of work. `update` is cheap enough to call per operation. */
export interface Progress {
  /** Work done so far, in the unit of the total (or a running count when there is no total). */
  update(done: number): void;
  /** Clears the bar (if one was drawn); call it before printing results. */
  stop(): void;
}

/** A Progress that draws nothing (piped output, --json). */
export const NO_PROGRESS: Progress = { update() {}, stop() {} };

export interface ProgressOptions {
  /** What is running ("x86-shadow: random"). */
  readonly label: string;
  /** Work in all, in `unit`; without it the bar shows a running count and rate instead of a percentage. */
  readonly total?: number;
  /** The unit of the counts shown ("translations"); with a total and no unit only the percentage is shown. */
  readonly unit?: string;
  /** The bar appears only once the work has run this long (default 1000 ms): quick runs print nothing. */
  readonly delayMs?: number;
  /** When the work (e.g. the whole command) started, in `clock` milliseconds (default: now). */
  readonly startedAt?: number;
  /** Milliseconds now (tests). */
  readonly clock?: () => number;
}

/**
 * A cli-progress bar on `stream`, or NO_PROGRESS when the stream is not a terminal: progress
 * goes to standard error only when it is a TTY, so piped or redirected output never carries
 * bar bytes (escape sequences, carriage returns). The bar starts after `delayMs` and is
 * cleared when stopped. Redraws are synchronous (cli-progress's synchronousUpdate), so a
 * run that never yields to the event loop still shows its progress.
 */
export function startProgress(stream: ProgressStream | undefined, options: ProgressOptions): Progress {
  if (stream === undefined || stream.isTTY !== true) return NO_PROGRESS;
  return new TerminalProgress(stream, options);
}

class TerminalProgress implements Progress {
  private bar: cliProgress.SingleBar | null = null;
  private readonly clock: () => number;
  private readonly startedAt: number;
  private readonly delayMs: number;
  private stopped = false;

  constructor(
    private readonly stream: ProgressStream,
    private readonly options: ProgressOptions,
  ) {
    this.clock = options.clock ?? Date.now;
    this.startedAt = options.startedAt ?? this.clock();
    this.delayMs = options.delayMs ?? 1000;
  }

  update(done: number): void {
    if (this.stopped) return;
    const now = this.clock();
    if (this.bar === null && now - this.startedAt < this.delayMs) return;
    const value = this.options.total === undefined ? done : Math.min(done, this.options.total);
    const payload = { rate: formatCount(done / Math.max((now - this.startedAt) / 1000, 0.001)) };
    // The first frame already shows where the work is.
    if (this.bar === null) this.bar = this.createBar(value, payload);
    else this.bar.update(value, payload);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.bar?.stop();
  }

  private createBar(value: number, payload: { rate: string }): cliProgress.SingleBar {
    const { label, total, unit } = this.options;
    const unitName = unit ?? 'done';
    const format =
      total === undefined
        ? `${label} | {value} ${unitName} | {rate} ${unitName}/s | {duration_formatted}`
        : `${label} [{bar}] {percentage}%${unit === undefined ? '' : ` | {value}/{total} ${unit}`} | {duration_formatted}, ETA {eta_formatted}`;
    const bar = new cliProgress.SingleBar(
      {
        // cli-progress types its stream as a NodeJS.WritableStream; it uses isTTY, columns and write.
        stream: this.stream as unknown as NodeJS.WritableStream,
        format,
        formatValue: (value, _options, type) => (type === 'value' || type === 'total' ? formatCount(value) : String(value)),
        clearOnComplete: true,
        hideCursor: true,
        fps: 10,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total ?? 0, value, payload);
    return bar;
  }
}

function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}
