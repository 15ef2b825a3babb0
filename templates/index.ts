// Public surface of templates/: the typed records adapters receive, their handler interfaces and results.
import { APIKEY, AUTHORIZATION, CHECKNOTHING, LISTENTRY } from './check-templates';
import { QUOTA } from './quota-template';
import { EDGE, LOGENTRY, METRIC, REPORTNOTHING, TRACESPAN } from './report-templates';
import type { TemplateInfo } from './template';

export * from './check-templates';
export * from './quota-template';
export * from './report-templates';
export * from './results';
export type { FieldSpec, FieldType, InstanceBase, TemplateInfo, Variety } from './template';

/** Every built-in template, by name. */
export const TEMPLATES: ReadonlyMap<string, TemplateInfo> = new Map(
  [
    CHECKNOTHING,
    LISTENTRY,
    AUTHORIZATION,
    APIKEY,
    QUOTA,
    REPORTNOTHING,
    LOGENTRY,
    METRIC,
    TRACESPAN,
    EDGE,
  ].map((t) => [t.name, t]),
);
