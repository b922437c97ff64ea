/* The plan: a profile resolved into runnable pipelines - plugins loaded and
 * checked, options bound, mailboxes read - with every problem found before
 * anything connects anywhere. `godwit check` prints it; `godwit run` runs it. */
#ifndef GW_PLAN_H
#define GW_PLAN_H

#include <stdbool.h>
#include <stdio.h>

#include "csv.h"
#include "diag.h"
#include "loader.h"
#include "optbind.h"
#include "profile.h"

struct gw_pipeline {
	const struct gw_pipeline_cfg *cfg;
	const struct gw_loaded_plugin *source;
	const struct gw_loaded_plugin *sink;
	void *source_config; /* bound option structs */
	void *sink_config;
	struct gw_optstore *source_store;
	struct gw_optstore *sink_store;
	struct gw_mailbox_list mailboxes;
};

struct gw_plan_options {
	const char *const *plugin_dirs; /* --plugin-path, may be NULL */
	size_t plugin_dir_count;
	bool dry_run;            /* swap every sink for maildir under dry_run_dir */
	const char *dry_run_dir; /* default "./dry-run" */
};

struct gw_plan {
	struct gw_profile *profile;
	struct gw_loader loader;
	struct gw_pipeline *pipelines;
	size_t pipeline_count;
	bool dry_run;
};

/* Build the plan; NULL if @p diag got any error (all problems are collected). */
struct gw_plan *gw_plan_build(const char *profile_path, const struct gw_plan_options *options,
                              struct gw_diag *diag);
/* The resolved plan, human-readable, secrets masked. */
void gw_plan_print(const struct gw_plan *plan, FILE *out);
void gw_plan_free(struct gw_plan *plan);

#endif
