/** Changes whenever a source file under `root` is added, removed or written (not when `root` moves). */
export function sourcesKey(root?: string, folders?: readonly string[]): string;
/** The compiled entry point for the sources as they are now, compiled first if need be. */
export function compiledCliEntry(root?: string): Promise<string>;
