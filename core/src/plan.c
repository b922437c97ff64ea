/* Building the plan: everything that can be checked offline is checked here,
 * and all problems are collected, so a profile is either runnable as a whole
 * or rejected before anything connects anywhere. */
#include "plan.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static const char *const endpoint_skip_keys[] = {"plugin", NULL};

static const struct gw_option *find_option(const struct gw_option *table, const char *name)
{
	for (const struct gw_option *o = table; o && o->name; o++)
		if (strcmp(o->name, name) == 0)
			return o;
	return NULL;
}

/* Loads the plugin an endpoint names. A plugin of the other kind gets a
 * message of its own, since "not found" would send the user looking for a
 * file that is right there. */
static const struct gw_loaded_plugin *load_endpoint(struct gw_plan *plan,
                                                    const struct gw_endpoint_cfg *ep,
                                                    enum gw_plugin_kind kind, struct gw_diag *diag)
{
	char *error = NULL;
	const struct gw_loaded_plugin *p = gw_loader_load(&plan->loader, kind, ep->plugin, &error);
	if (p)
		return p;

	enum gw_plugin_kind other = kind == GW_PLUGIN_SOURCE ? GW_PLUGIN_SINK : GW_PLUGIN_SOURCE;
	char *other_error = NULL;
	if (gw_loader_load(&plan->loader, other, ep->plugin, &other_error)) {
		gw_diag_error(diag, plan->profile->path, ep->line, ep->column,
		              "%s.plugin: '%s' is a %s plugin and cannot be used as a %s",
		              ep->key_path, ep->plugin, gw_plugin_kind_name(other),
		              gw_plugin_kind_name(kind));
	} else {
		gw_diag_error(diag, plan->profile->path, ep->line, ep->column, "%s.plugin: %s",
		              ep->key_path, error);
	}
	free(other_error);
	free(error);
	return NULL;
}

static bool bind_endpoint(struct gw_plan *plan, const struct gw_loaded_plugin *plugin,
                          const struct gw_endpoint_cfg *ep, void **config,
                          struct gw_optstore **store, struct gw_diag *diag)
{
	*config = gw_xcalloc(1, plugin->desc.config_size ? plugin->desc.config_size : 1);
	*store = gw_optstore_new(plan->profile->dir);
	return gw_options_bind(plugin->desc.options, &plan->profile->doc, ep->options_node,
	                       plan->profile->path, ep->key_path, endpoint_skip_keys, *config,
	                       store, diag);
}

/* --dry-run: the maildir sink with only its path set, under dry_run_dir. */
static bool bind_dry_run_sink(struct gw_plan *plan, struct gw_pipeline *pl, const char *dir,
                              struct gw_diag *diag)
{
	char *error = NULL;
	pl->sink = gw_loader_load(&plan->loader, GW_PLUGIN_SINK, "maildir", &error);
	if (!pl->sink) {
		gw_diag_error(diag, NULL, 0, 0, "--dry-run needs the maildir sink: %s", error);
		free(error);
		return false;
	}
	pl->sink_config =
	        gw_xcalloc(1, pl->sink->desc.config_size ? pl->sink->desc.config_size : 1);
	const struct gw_option *path_opt = find_option(pl->sink->desc.options, "path");
	if (!path_opt) {
		gw_diag_error(diag, NULL, 0, 0, "%s: the maildir sink has no 'path' option",
		              pl->sink->path);
		return false;
	}
	/* The dry-run folder comes from the command line: relative to the current folder. */
	pl->sink_store = gw_optstore_new(NULL);
	/* "path" is a skip key: the binder neither requires it nor applies its default. */
	if (!gw_options_bind(pl->sink->desc.options, &plan->profile->doc, 0, plan->profile->path,
	                     "--dry-run sink", (const char *const[]){"path", NULL}, pl->sink_config,
	                     &pl->sink_store, diag))
		return false;
	char *abs_dir = dir[0] == '/' ? gw_xstrdup(dir) : NULL;
	if (!abs_dir) {
		char *cwd = getcwd(NULL, 0);
		abs_dir = gw_xasprintf("%s/%s", cwd ? cwd : ".", dir);
		free(cwd);
	}
	char *path = gw_xasprintf("%s/%s/{email}", abs_dir, pl->cfg->name);
	free(abs_dir);
	bool ok = gw_option_parse_value(path_opt, path, pl->sink_config, pl->sink_store, &error);
	if (!ok) {
		gw_diag_error(diag, NULL, 0, 0, "--dry-run sink path '%s': %s", path, error);
		free(error);
	}
	free(path);
	return ok;
}

static void load_mailboxes(struct gw_plan *plan, struct gw_pipeline *pl, struct gw_diag *diag)
{
	const struct gw_pipeline_cfg *cfg = pl->cfg;
	if (cfg->mailboxes_csv)
		gw_csv_load(cfg->mailboxes_csv, &pl->mailboxes, diag);
	for (size_t i = 0; i < cfg->mailbox_count; i++) {
		const struct gw_inline_mailbox *m = &cfg->mailboxes[i];
		gw_mailbox_list_add(&pl->mailboxes, m->email, m->username, m->password,
		                    plan->profile->path, m->line, diag);
	}
	if (pl->mailboxes.count == 0)
		gw_diag_error(diag, plan->profile->path, cfg->line, cfg->column,
		              "pipelines: '%s' has no mailbox to migrate (mailboxes.csv or "
		              "mailboxes.list)",
		              cfg->name);
}

struct gw_plan *gw_plan_build(const char *profile_path, const struct gw_plan_options *options,
                              struct gw_diag *diag)
{
	struct gw_profile *profile = gw_profile_load(profile_path, diag);
	if (!profile)
		return NULL;

	struct gw_plan *plan = gw_xcalloc(1, sizeof(*plan));
	plan->profile = profile;
	plan->dry_run = options && options->dry_run;
	gw_loader_init(&plan->loader, options ? options->plugin_dirs : NULL,
	               options ? options->plugin_dir_count : 0,
	               (const char *const *)profile->plugin_path, profile->plugin_path_count);

	plan->pipeline_count = profile->pipeline_count;
	plan->pipelines = gw_xcalloc(profile->pipeline_count, sizeof(*plan->pipelines));
	const char *dry_dir = options && options->dry_run_dir ? options->dry_run_dir : "./dry-run";

	for (size_t i = 0; i < profile->pipeline_count; i++) {
		struct gw_pipeline *pl = &plan->pipelines[i];
		pl->cfg = &profile->pipelines[i];

		pl->source = load_endpoint(plan, &pl->cfg->source, GW_PLUGIN_SOURCE, diag);
		if (pl->source)
			bind_endpoint(plan, pl->source, &pl->cfg->source, &pl->source_config,
			              &pl->source_store, diag);
		if (plan->dry_run) {
			bind_dry_run_sink(plan, pl, dry_dir, diag);
		} else {
			pl->sink = load_endpoint(plan, &pl->cfg->sink, GW_PLUGIN_SINK, diag);
			if (pl->sink)
				bind_endpoint(plan, pl->sink, &pl->cfg->sink, &pl->sink_config,
				              &pl->sink_store, diag);
		}
		load_mailboxes(plan, pl, diag);
	}

	if (diag->errors) {
		gw_plan_free(plan);
		return NULL;
	}
	return plan;
}

static void print_size(FILE *out, uint64_t bytes)
{
	if (bytes % (1024 * 1024) == 0)
		fprintf(out, "%llu MiB", (unsigned long long)(bytes / (1024 * 1024)));
	else
		fprintf(out, "%llu bytes", (unsigned long long)bytes);
}

static void print_patterns(FILE *out, const char *label, char *const *items, size_t count)
{
	fprintf(out, "    %s:", label);
	if (count == 0)
		fputs(" (none)", out);
	for (size_t i = 0; i < count; i++)
		fprintf(out, "%s \"%s\"", i ? "," : "", items[i]);
	fputc('\n', out);
}

static void print_endpoint(FILE *out, const char *role, const struct gw_loaded_plugin *p,
                           const void *config)
{
	fprintf(out, "  %s: %s %s (%s)\n", role, p->desc.name, p->desc.version, p->path);
	gw_options_print(p->desc.options, config, out, "    ");
}

static void print_pipeline(FILE *out, const struct gw_pipeline *pl, bool dry_run)
{
	const struct gw_pipeline_cfg *c = pl->cfg;
	fprintf(out, "pipeline %s\n", c->name);
	print_endpoint(out, "source", pl->source, pl->source_config);
	print_endpoint(out, dry_run ? "sink (--dry-run)" : "sink", pl->sink, pl->sink_config);

	fprintf(out, "  mailboxes: %zu", pl->mailboxes.count);
	if (c->mailboxes_csv)
		fprintf(out, " (csv: %s%s)", c->mailboxes_csv,
		        c->mailbox_count ? ", plus inline" : "");
	fputc('\n', out);
	/* An organisation's CSV has thousands of rows: the first ones show the file was read right.
	 */
	enum { SHOWN = 20 };
	for (size_t i = 0; i < pl->mailboxes.count && i < SHOWN; i++)
		fprintf(out, "    %s\n", pl->mailboxes.items[i].mbx.email);
	if (pl->mailboxes.count > SHOWN)
		fprintf(out, "    ... and %zu more\n", pl->mailboxes.count - SHOWN);

	fputs("  folders:\n", out);
	print_patterns(out, "include", c->folders_include, c->folders_include_count);
	print_patterns(out, "exclude", c->folders_exclude, c->folders_exclude_count);
	for (size_t i = 0; i < c->folder_map_count; i++)
		fprintf(out, "    map: \"%s\" -> \"%s\"\n", c->folder_map[i].from,
		        c->folder_map[i].to);

	fprintf(out, "  messages: newest first, max_count %llu, max_size ",
	        (unsigned long long)c->max_count);
	print_size(out, c->max_size);
	if (c->since)
		fprintf(out, ", since %lld (epoch)", (long long)c->since);
	fputc('\n', out);
	fprintf(out,
	        "  limits: mailboxes_in_parallel %u, source_connections %u, sink_connections "
	        "%u, connections_per_mailbox %u, retries %u, batches of %u messages / ",
	        c->mailboxes_in_parallel, c->source_connections, c->sink_connections,
	        c->connections_per_mailbox, c->retries, c->batch_messages);
	print_size(out, c->batch_bytes);
	fputc('\n', out);
}

void gw_plan_print(const struct gw_plan *plan, FILE *out)
{
	const struct gw_profile *p = plan->profile;
	fprintf(out, "profile: %s\n", p->path);
	fprintf(out, "state: %s\n", p->state_path);
	fprintf(out, "report: %s\n", p->report_dir);
	fputs("plugin search path:\n", out);
	for (size_t i = 0; i < plan->loader.dir_count; i++)
		fprintf(out, "  %s\n", plan->loader.dirs[i]);
	size_t mailboxes = 0;
	for (size_t i = 0; i < plan->pipeline_count; i++) {
		print_pipeline(out, &plan->pipelines[i], plan->dry_run);
		mailboxes += plan->pipelines[i].mailboxes.count;
	}
	fprintf(out, "plan: %zu pipeline%s, %zu mailbox%s\n", plan->pipeline_count,
	        plan->pipeline_count == 1 ? "" : "s", mailboxes, mailboxes == 1 ? "" : "es");
}

void gw_plan_free(struct gw_plan *plan)
{
	if (!plan)
		return;
	for (size_t i = 0; i < plan->pipeline_count; i++) {
		struct gw_pipeline *pl = &plan->pipelines[i];
		free(pl->source_config);
		free(pl->sink_config);
		gw_optstore_free(pl->source_store);
		gw_optstore_free(pl->sink_store);
		gw_mailbox_list_free(&pl->mailboxes);
	}
	free(plan->pipelines);
	gw_loader_free(&plan->loader);
	gw_profile_free(plan->profile);
	free(plan);
}
