// A minimal event emitter for objects that exist once per connection (the builtin HTTP/2 server's
// sessions and streams). EventEmitter keeps its listeners in a null-prototype object, which V8
// holds in dictionary mode: ~0.3 KiB per emitter, 10,000 connections → ~6 MiB for two of them.
// Here each event name gets a property on a plain object (fast mode) holding one listener or a
// list. Same calling convention: listeners run in order, with the emitter as `this`.

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- listeners take what their event passes, as with EventEmitter
export type Listener = (...args: any[]) => void;

type OnceWrapper = Listener & { listener?: Listener };

export class SlotEmitter<E extends string> {
  readonly #listeners: Partial<Record<E, Listener | Listener[]>> = {};

  on(event: E, listener: Listener): this {
    const current = this.#listeners[event];
    this.#listeners[event] = current === undefined ? listener : Array.isArray(current) ? [...current, listener] : [current, listener];
    return this;
  }

  /** Runs `listener` at the next emit only; off() with `listener` removes it before that. */
  once(event: E, listener: Listener): this {
    const wrapper: OnceWrapper = (...args: unknown[]) => {
      this.off(event, wrapper);
      listener.apply(this, args);
    };
    wrapper.listener = listener;
    return this.on(event, wrapper);
  }

  off(event: E, listener: Listener): this {
    const current = this.#listeners[event];
    if (current === listener || (current as OnceWrapper | undefined)?.listener === listener) {
      this.#listeners[event] = undefined;
    } else if (Array.isArray(current)) {
      const index = current.findIndex((l) => l === listener || (l as OnceWrapper).listener === listener);
      const rest = current.filter((_, i) => i !== index);
      this.#listeners[event] = rest.length === 0 ? undefined : rest.length === 1 ? rest[0] : rest;
    }
    return this;
  }

  listenerCount(event: E): number {
    const current = this.#listeners[event];
    return current === undefined ? 0 : Array.isArray(current) ? current.length : 1;
  }

  /** Calls the event's listeners in order; false when there are none. */
  emit(event: E, ...args: unknown[]): boolean {
    const current = this.#listeners[event];
    if (current === undefined) return false;
    if (Array.isArray(current)) for (const listener of [...current]) listener.apply(this, args);
    else current.apply(this, args);
    return true;
  }
}
