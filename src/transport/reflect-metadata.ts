// @peculiar/x509 resolves its algorithm providers through tsyringe, which refuses to load unless
// a Reflect metadata polyfill is present (x509 README "Reflect Polyfill Required"). tsyringe only
// calls getMetadata / getOwnMetadata / defineMetadata, so this is that subset of the
// reflect-metadata API instead of one more dependency. Import it before @peculiar/x509.

type Key = unknown;
const store = new WeakMap<object, Map<string | symbol | undefined, Map<Key, unknown>>>();

function table(target: object, property: string | symbol | undefined, create: boolean): Map<Key, unknown> | undefined {
  let byProperty = store.get(target);
  if (!byProperty) {
    if (!create) return undefined;
    byProperty = new Map();
    store.set(target, byProperty);
  }
  let values = byProperty.get(property);
  if (!values && create) {
    values = new Map();
    byProperty.set(property, values);
  }
  return values;
}

const polyfill = {
  defineMetadata(key: Key, value: unknown, target: object, property?: string | symbol): void {
    table(target, property, true)!.set(key, value);
  },
  getOwnMetadata(key: Key, target: object, property?: string | symbol): unknown {
    return table(target, property, false)?.get(key);
  },
  hasOwnMetadata(key: Key, target: object, property?: string | symbol): boolean {
    return table(target, property, false)?.has(key) ?? false;
  },
  getMetadata(key: Key, target: object, property?: string | symbol): unknown {
    for (let o: object | null = target; o !== null; o = Object.getPrototypeOf(o) as object | null) {
      const values = table(o, property, false);
      if (values?.has(key)) return values.get(key);
    }
    return undefined;
  },
  hasMetadata(key: Key, target: object, property?: string | symbol): boolean {
    for (let o: object | null = target; o !== null; o = Object.getPrototypeOf(o) as object | null) {
      if (table(o, property, false)?.has(key)) return true;
    }
    return false;
  },
  metadata(key: Key, value: unknown) {
    return (target: object, property?: string | symbol): void => polyfill.defineMetadata(key, value, target, property);
  },
};

const reflect = Reflect as unknown as Record<string, unknown>;
if (typeof reflect.getMetadata !== "function") {
  for (const [name, fn] of Object.entries(polyfill)) reflect[name] = fn;
}
