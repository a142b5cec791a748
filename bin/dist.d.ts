// Types for bin/dist.js (plain JavaScript: it runs before any TypeScript tooling is loaded).
export declare const repoRoot: string;
export declare const srcDir: string;
export declare const distDir: string;
export declare const stampFile: string;
export declare function sourceFiles(dir?: string, out?: string[]): string[];
export declare function sourceFingerprint(): string;
export declare function isDistCurrent(): boolean;
export declare const nodeFlags: readonly string[];
export declare const runtimeNodeFlags: readonly string[];
