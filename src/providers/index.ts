import type { ProviderType } from './types.js';

/** Every provider type graywave knows: one line per provider. */
export const providerTypes: ProviderType[] = [
];

export function findProviderType(type: string): ProviderType | undefined {
  return providerTypes.find((p) => p.type === type);
}
