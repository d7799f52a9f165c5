// When the view draws: at most ~10 times a second, one layout in flight at a time, and one
// more drawing after it when something changed meanwhile.

export class Redraw {
  last = 0; // when the last drawing finished (performance.now())
  private busy = false;
  private again = false;
  private timer: number | null = null;

  /** ``draw`` runs when ``ready`` (a document is there) and the view is ``alive``; what it
   *  throws goes to ``failed``. */
  constructor(private draw: () => Promise<void>, private ready: () => boolean, private alive: () => boolean,
    private failed: (e: unknown) => void) {}

  /** Draw soon (``now``: without waiting out the rate limit). */
  schedule(now: boolean): void {
    if (!this.alive()) return;
    if (this.busy) {
      this.again = true;
      return;
    }
    const wait = now ? 0 : Math.max(0, 100 - (performance.now() - this.last));
    if (this.timer !== null) return;
    this.timer = window.setTimeout(() => {
      this.timer = null;
      void this.run();
    }, wait);
  }

  private async run(): Promise<void> {
    if (!this.ready()) return;
    this.busy = true;
    try {
      await this.draw();
    } catch (e) {
      this.failed(e);
    } finally {
      this.busy = false;
      if (this.again) {
        this.again = false;
        this.schedule(false);
      }
    }
  }
}
