/* godwit: the command line. Thin on purpose: parses arguments and calls
 * libgodwit (plan, loader, run). Exit codes are part of the interface:
 * 0 ok, 1 partial failure, 2 usage or configuration error. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "optbind.h"
#include "plan.h"
#include "run.h"
#include "util.h"

enum { EXIT_OK = 0, EXIT_PARTIAL = 1, EXIT_USAGE = 2 };

static const char usage_text[] =
        "Usage: godwit [OPTIONS] COMMAND [ARGS]\n"
        "\n"
        "Move mailboxes (messages and folders) from IMAP servers into Exchange Online,\n"
        "IMAP or Maildir, as described by a YAML profile.\n"
        "\n"
        "Commands:\n"
        "  run PROFILE       migrate every mailbox of the profile (re-running syncs what is new)\n"
        "  check PROFILE     validate the profile offline and print the resolved plan\n"
        "  plugins [NAME]    list the plugins found, or the options of one plugin\n"
        "\n"
        "Options:\n"
        "  --plugin-path DIR search DIR for plugins first (repeatable)\n"
        "  --dry-run         run: write into Maildir under ./dry-run instead of the sinks\n"
        "  --dry-run-dir DIR run: where --dry-run writes (default ./dry-run)\n"
        "  --no-progress     run: no periodic progress lines\n"
        "  --log-level LEVEL error, warn, info (default), debug or trace\n"
        "  -h, --help        this text\n"
        "  --version         print the version\n"
        "\n"
        "Exit codes: 0 success, 1 partial failure (some mailboxes or messages failed),\n"
        "2 usage or configuration error.\n"
        "Documentation: docs/ (profile.md, architecture.md).\n";

struct cli {
	const char *command;
	const char *argument;
	const char **plugin_dirs;
	size_t plugin_dir_count;
	bool dry_run;
	const char *dry_run_dir;
	bool progress;
};

static int usage_error(const char *fmt, ...) GW_PRINTF(1, 2);
static int usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("godwit: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'godwit --help'.\n", stderr);
	return EXIT_USAGE;
}

/* Returns -1 when parsing succeeded and the command should run, else an exit code. */
static int parse_args(int argc, char **argv, struct cli *cli)
{
	cli->progress = true;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(usage_text, stdout);
			return EXIT_OK;
		} else if (strcmp(a, "--version") == 0) {
			printf("godwit %s (plugin ABI %d.%d)\n", GODWIT_VERSION, GW_ABI_MAJOR,
			       GW_ABI_MINOR);
			return EXIT_OK;
		} else if (strcmp(a, "--plugin-path") == 0 || strcmp(a, "--log-level") == 0 ||
		           strcmp(a, "--dry-run-dir") == 0) {
			if (i + 1 >= argc)
				return usage_error("option %s needs a value", a);
			const char *value = argv[++i];
			if (strcmp(a, "--plugin-path") == 0) {
				cli->plugin_dirs = gw_xrealloc(cli->plugin_dirs,
				                               (cli->plugin_dir_count + 1) *
				                                       sizeof(*cli->plugin_dirs));
				cli->plugin_dirs[cli->plugin_dir_count++] = value;
			} else if (strcmp(a, "--dry-run-dir") == 0) {
				cli->dry_run_dir = value;
			} else {
				enum gw_log_level level;
				if (!gw_log_parse_level(value, &level))
					return usage_error("unknown log level '%s' (error, warn, "
					                   "info, debug, trace)",
					                   value);
				gw_log_set_level(level);
			}
		} else if (strcmp(a, "--dry-run") == 0) {
			cli->dry_run = true;
		} else if (strcmp(a, "--no-progress") == 0) {
			cli->progress = false;
		} else if (a[0] == '-' && a[1] != '\0') {
			return usage_error("unknown option '%s'", a);
		} else if (!cli->command) {
			cli->command = a;
		} else if (!cli->argument) {
			cli->argument = a;
		} else {
			return usage_error("unexpected argument '%s'", a);
		}
	}
	if (!cli->command) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	return -1;
}

static struct gw_plan *build_plan(const struct cli *cli)
{
	struct gw_diag diag = {0};
	struct gw_plan_options opts = {
	        .plugin_dirs = cli->plugin_dirs,
	        .plugin_dir_count = cli->plugin_dir_count,
	        .dry_run = cli->dry_run,
	        .dry_run_dir = cli->dry_run_dir,
	};
	struct gw_plan *plan = gw_plan_build(cli->argument, &opts, &diag);
	gw_diag_print(&diag);
	if (!plan)
		fprintf(stderr, "godwit: %s: %zu error%s, nothing was done\n", cli->argument,
		        diag.errors, diag.errors == 1 ? "" : "s");
	gw_diag_free(&diag);
	return plan;
}

static int cmd_check(const struct cli *cli)
{
	struct gw_plan *plan = build_plan(cli);
	if (!plan)
		return EXIT_USAGE;
	gw_plan_print(plan, stdout);
	printf("profile is valid (checked offline: no server was contacted)\n");
	gw_plan_free(plan);
	return EXIT_OK;
}

static int cmd_run(const struct cli *cli)
{
	struct gw_plan *plan = build_plan(cli);
	if (!plan)
		return EXIT_USAGE;
	struct gw_run_options opts = {.progress = cli->progress};
	int code = gw_run(plan, &opts);
	gw_plan_free(plan);
	return code;
}

struct plugin_listing {
	const char *wanted; /* NULL: list all */
	size_t found;
};

static void print_option_help(const struct gw_option *o)
{
	printf("  %-18s %-9s", o->name, gw_option_type_name(o->type));
	if (o->flags & GW_OPT_REQUIRED)
		printf(" required");
	else if (o->default_value)
		printf(" default: %s", o->default_value);
	printf("\n      %s\n", o->description ? o->description : "");
	if (o->type == GW_OPT_ENUM && o->choices) {
		printf("      one of:");
		for (const char *const *c = o->choices; *c; c++)
			printf(" %s", *c);
		putchar('\n');
	}
}

static void on_plugin(const struct gw_loaded_plugin *p, void *arg)
{
	struct plugin_listing *l = arg;
	const struct gw_plugin *d = &p->desc;
	if (l->wanted && strcmp(l->wanted, d->name) != 0)
		return;
	l->found++;
	if (!l->wanted) {
		printf("%-6s %-16s %-8s %s\n", gw_plugin_kind_name(d->kind), d->name, d->version,
		       d->description);
		return;
	}
	printf("%s plugin %s %s (%s)\n  %s\n  license: %s\n\noptions:\n",
	       gw_plugin_kind_name(d->kind), d->name, d->version, p->path, d->description,
	       d->license ? d->license : "unknown");
	if (!d->options || !d->options->name)
		puts("  (none)");
	for (const struct gw_option *o = d->options; o && o->name; o++)
		print_option_help(o);
	putchar('\n');
}

static void on_plugin_error(const char *message, void *arg)
{
	fprintf(stderr, "godwit: %s\n", message);
}

static int cmd_plugins(const struct cli *cli)
{
	struct gw_loader loader;
	gw_loader_init(&loader, cli->plugin_dirs, cli->plugin_dir_count, NULL, 0);
	struct plugin_listing listing = {.wanted = cli->argument};
	gw_loader_discover(&loader, on_plugin, on_plugin_error, &listing);
	int code = EXIT_OK;
	if (listing.found == 0) {
		if (cli->argument)
			fprintf(stderr, "godwit: no plugin named '%s'; looked in:\n",
			        cli->argument);
		else
			fprintf(stderr, "godwit: no plugins found; looked in:\n");
		for (size_t i = 0; i < loader.dir_count; i++)
			fprintf(stderr, "  %s\n", loader.dirs[i]);
		code = cli->argument ? EXIT_USAGE : EXIT_OK;
	}
	gw_loader_free(&loader);
	return code;
}

int main(int argc, char **argv)
{
	struct cli cli = {0};
	int code = parse_args(argc, argv, &cli);
	if (code >= 0)
		goto out;

	if (strcmp(cli.command, "plugins") == 0) {
		code = cmd_plugins(&cli);
	} else if (strcmp(cli.command, "check") == 0 || strcmp(cli.command, "run") == 0) {
		if (!cli.argument) {
			code = usage_error("%s needs a profile: godwit %s PROFILE", cli.command,
			                   cli.command);
			goto out;
		}
		code = strcmp(cli.command, "check") == 0 ? cmd_check(&cli) : cmd_run(&cli);
	} else {
		code = usage_error("unknown command '%s' (run, check, plugins)", cli.command);
	}
out:
	free(cli.plugin_dirs);
	return code;
}
