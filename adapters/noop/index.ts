// The noop adapter: passes every check, grants every quota, drops every report (Mixer's `noop`).
import {
  APIKEY,
  AUTHORIZATION,
  CHECKNOTHING,
  EDGE,
  LISTENTRY,
  LOGENTRY,
  METRIC,
  QUOTA,
  REPORTNOTHING,
  TRACESPAN,
} from '../../templates';
import { defineAdapter } from '../contract';
import { NOOP_CONFIG } from './config';
import { createNoopHandler } from './handler';

export const NOOP = defineAdapter({
  name: 'noop',
  description: 'Passes every check, grants every quota in full and drops every report (for testing)',
  // Listed one by one, as the handler implements them; Mixer's noop lacked apikey and edge.
  templates: [
    CHECKNOTHING.name,
    LISTENTRY.name,
    AUTHORIZATION.name,
    APIKEY.name,
    QUOTA.name,
    REPORTNOTHING.name,
    LOGENTRY.name,
    METRIC.name,
    TRACESPAN.name,
    EDGE.name,
  ],
  config: NOOP_CONFIG,
  build: createNoopHandler,
});
