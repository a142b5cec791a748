// A FIFO with O(1) push and shift (Array#shift is O(n), which matters with thousands of queues).

export class Deque<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head === this.items.length) {
      // Empty: let the grown backing store go (~150 bytes per idle queue, 10,000 connections).
      this.items = [];
      this.head = 0;
      return item;
    }
    // Compact once the dead prefix dominates, so memory stays proportional to the live items.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  peek(): T | undefined {
    return this.head < this.items.length ? this.items[this.head] : undefined;
  }

  /** Replaces the first item (e.g. with the unsent rest of a split chunk). */
  replaceHead(item: T): void {
    if (this.head >= this.items.length) throw new Error("Deque.replaceHead on an empty deque");
    this.items[this.head] = item;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = this.head; i < this.items.length; i++) yield this.items[i] as T;
  }
}
