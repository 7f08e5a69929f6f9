// Non-fatal import problems. Capped so a folder with thousands of missing posters still yields a short,
// readable list (the total is kept in the last line).

export class WarningList {
  private readonly shown: string[] = [];
  private hidden = 0;

  constructor(private readonly cap = 50) {}

  add(message: string): void {
    if (this.shown.length < this.cap) this.shown.push(message);
    else this.hidden++;
  }

  get count(): number {
    return this.shown.length + this.hidden;
  }

  list(): string[] {
    return this.hidden > 0 ? [...this.shown, `… and ${this.hidden} more warnings`] : [...this.shown];
  }
}
