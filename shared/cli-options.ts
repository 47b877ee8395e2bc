import { InvalidArgumentError } from 'commander';

export function integer(name: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
      throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}, got '${value}'.`);
    }
    return parsed;
  };
}

export function positiveNumber(name: string) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || parsed < 0) {
      throw new InvalidArgumentError(`${name} must be a non-negative number, got '${value}'.`);
    }
    return parsed;
  };
}

/** `0.85,0.86`: accuracies between 0 and 1 (--target-acc). */
export function accuracyList(value: string): number[] {
  const list = value.split(',').map(Number);
  if (list.some((x) => !Number.isFinite(x) || x <= 0 || x > 1))
    throw new InvalidArgumentError(
      `--target-acc takes accuracies between 0 and 1, comma-separated, got '${value}'.`,
    );
  return list;
}
