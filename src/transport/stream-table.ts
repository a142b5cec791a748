// The open streams of one HTTP/2 connection, by stream id. A gRPC frontend connection carries one
// call at a time (kube-apiserver opens a connection per tunnelled connection), so the first stream
// lives in a field and a Map is made only for a second one at once: a Map with one entry is
// ~0.2 KiB, and a frontend holds a connection per proxied connection (10,000 → ~2 MiB).

export class StreamTable<S extends { readonly id: number }> {
  #one: S | undefined;
  #more: Map<number, S> | undefined;

  get size(): number {
    return (this.#one === undefined ? 0 : 1) + (this.#more?.size ?? 0);
  }

  get(id: number): S | undefined {
    return this.#one?.id === id ? this.#one : this.#more?.get(id);
  }

  /** Adds a stream whose id is not in the table. */
  add(stream: S): void {
    if (this.#one === undefined && this.#more === undefined) this.#one = stream;
    else (this.#more ??= new Map()).set(stream.id, stream);
  }

  delete(id: number): void {
    if (this.#one?.id === id) this.#one = undefined;
    else if (this.#more?.delete(id) && this.#more.size === 0) this.#more = undefined;
    if (this.#one === undefined && this.#more?.size === 1) {
      // Back to one stream: it moves to the field and the Map goes.
      for (const only of this.#more.values()) this.#one = only;
      this.#more = undefined;
    }
  }

  /**
   * Visits every stream, in no particular order, without a copy: for what a peer's frame may ask
   * for often (a SETTINGS or WINDOW_UPDATE touches every stream). `visit` must not change the table.
   */
  forEach(visit: (stream: S) => void): void {
    if (this.#one !== undefined) visit(this.#one);
    this.#more?.forEach((stream) => visit(stream));
  }

  /** The streams in the order they were opened (ascending ids), as a copy: safe to change the table meanwhile. */
  list(): S[] {
    if (this.#more === undefined) return this.#one === undefined ? [] : [this.#one];
    const all = [...this.#more.values()];
    if (this.#one !== undefined) all.push(this.#one);
    return all.sort((a, b) => a.id - b.id);
  }
}
