// Types for go-template.js (plain JavaScript so that `node go-template.js` runs it without a loader).
export function goJson(value: unknown): string;
export function render(template: string, data: unknown): string;
export function renderFile(template: string, file: string, running?: string): string;
export function startTemplateServer(dir: string): { readonly requests: string; close(): void };
