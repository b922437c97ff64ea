/* Connection budgets: how many connections may be open at once to one
 * server (the source host, the sink). A mailbox's first connection waits for
 * a slot; the extra connections of its lanes (migrate.c) only take a slot
 * that is free now and that no waiting mailbox wants, so lanes never delay
 * the start of another mailbox. */
#ifndef GW_BUDGET_H
#define GW_BUDGET_H

#include <stdbool.h>

#include "report.h"

struct gw_budget;

/* A counting semaphore of @p limit slots (0 means 1) that remembers its peak use. */
struct gw_budget *gw_budget_new(const char *key, unsigned limit);
void gw_budget_free(struct gw_budget *budget);
/* Wait for a slot. False (no slot taken) if a stop was requested while waiting. */
bool gw_budget_acquire(struct gw_budget *budget);
/* Take a slot only if one is free and nobody is waiting for one. */
bool gw_budget_try_acquire(struct gw_budget *budget);
void gw_budget_release(struct gw_budget *budget);
/* Lower the limit (two pipelines sharing a host: the smaller limit holds). */
void gw_budget_limit_min(struct gw_budget *budget, unsigned limit);
void gw_budget_describe(const struct gw_budget *budget, struct gw_budget_report *out);
const char *gw_budget_key(const struct gw_budget *budget);

/* A source and a sink connection, both or neither: waiting for them
 * (gw_budget_acquire) or only if free now (gw_budget_try_acquire). */
bool gw_budget_acquire_pair(struct gw_budget *source, struct gw_budget *sink, bool wait);
void gw_budget_release_pair(struct gw_budget *source, struct gw_budget *sink);

#endif
