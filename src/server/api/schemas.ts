import { z } from 'zod';

/** Ids are our own prefixed ids or vendor ids (cohort ids); anything printable and short. */
export const idParam = z.object({
  id: z
    .string()
    .trim()
    .min(1, 'an id is required')
    .max(200, 'at most 200 characters')
    .regex(/^[\w.:-]+$/, 'must be an id such as dst_Ab3…'),
});

const intString = (min: number, max: number) =>
  z.coerce
    .number({ error: 'must be a number' })
    .int('must be a whole number')
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`);

export const deadLettersQuery = z.object({
  stream: idParam.shape.id.optional(),
  limit: intString(1, 1000).default(100),
  /** Cursor: dead letters with an id below this one. */
  before: intString(0, Number.MAX_SAFE_INTEGER).optional(),
});
