/* Running a plan: workers, budgets, retries, state, reports (owned by the
 * orchestrator; the CLI only calls gw_run). */
#ifndef GW_RUN_H
#define GW_RUN_H

#include <stdbool.h>

#include "plan.h"

struct gw_run_options {
	bool progress; /* periodic progress lines on the console (default on) */
};

/* Runs every mailbox of every pipeline (options may be NULL: defaults).
 * Writes report-<UTC time>.json/.csv under the profile's report folder and
 * prints a summary on stdout. Returns the process exit code: 0 every mailbox
 * completed and no message failed, 1 anything partial, failed or
 * interrupted, 2 the state or the report cannot be opened (nothing ran).
 * SIGINT/SIGTERM are handled while it runs: the first stops gracefully, the
 * second at once; if a worker is then stuck in a plugin call for more than
 * 5 s, the report is written and the process exits with _exit(). */
int gw_run(struct gw_plan *plan, const struct gw_run_options *options);

#endif
