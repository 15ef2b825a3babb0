// The denier adapter: answers every check with one configured status (Mixer's `denier`).
import { CHECKNOTHING, LISTENTRY, QUOTA } from '../../../templates';
import { defineAdapter } from '../../contract';
import { DENIER_CONFIG } from './config';
import { createDenierHandler } from './handler';

export const DENIER = defineAdapter({
  name: 'denier',
  description: 'Rejects every check with a configured status, and grants no quota',
  templates: [CHECKNOTHING.name, LISTENTRY.name, QUOTA.name],
  config: DENIER_CONFIG,
  build: createDenierHandler,
});
