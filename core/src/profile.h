/* The migration profile (YAML, docs/profile.md): read with libyaml's
 * document loader, checked key by key with file:line:column, and turned into
 * plain structs. Plugin options stay YAML nodes here: they are bound against
 * each plugin's option table once the plugin is loaded (optbind.h). */
#ifndef GW_PROFILE_H
#define GW_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "diag.h"

/* A plugin reference with its option mapping: `source: {plugin: imap, host: ...}`. */
struct gw_endpoint_cfg {
	char *plugin;     /* plugin name, e.g. "imap" */
	int options_node; /* yaml_document node id of the mapping (0 = none); "plugin" key skipped
	                     by binding */
	unsigned line, column; /* where the mapping starts (1-based) */
	char *key_path;        /* "pipelines[0].source", for messages */
};

struct gw_folder_map_rule {
	char *from; /* pattern, '*' matches any run of characters incl. the delimiter */
	char *to;   /* replacement, '*' takes what the pattern's '*' matched */
};

/* An inline mailbox in the profile (same fields as a CSV row). */
struct gw_inline_mailbox {
	char *email;
	char *username;
	char *password; /* may be a secret reference; resolved when the plan is made */
	unsigned line, column;
};

struct gw_pipeline_cfg {
	char *name;
	unsigned line, column;
	struct gw_endpoint_cfg source;
	struct gw_endpoint_cfg sink;

	char *mailboxes_csv; /* path, resolved against the profile's folder; NULL if none */
	struct gw_inline_mailbox *mailboxes; /* inline list */
	size_t mailbox_count;

	char **folders_include;
	size_t folders_include_count; /* patterns; empty = all */
	char **folders_exclude;
	size_t folders_exclude_count;
	struct gw_folder_map_rule *folder_map;
	size_t folder_map_count;

	uint64_t max_count; /* default 500000 */
	uint64_t max_size;  /* bytes, default 35 MB (35,000,000... see docs: 35 MiB) */
	int64_t since;      /* epoch seconds, 0 = no limit */

	unsigned mailboxes_in_parallel;   /* default 4 */
	unsigned source_connections;      /* per source host, default 8 */
	unsigned sink_connections;        /* default 8 */
	unsigned connections_per_mailbox; /* lanes of one mailbox, each a source and a sink
	                                     connection; default 2 */
	unsigned retries;                 /* session retries per mailbox, default 5 */
	unsigned batch_messages;          /* messages per batch (commit unit), default 4096 */
	uint64_t batch_bytes;             /* bytes per batch, default 128 MiB */
};

struct gw_profile {
	char *path; /* as given */
	char *dir;  /* its folder: relative paths in the profile are resolved against it */
	int version;
	char **plugin_path;
	size_t plugin_path_count; /* resolved against dir */
	char *state_path;         /* default: <dir>/godwit-state.db */
	char *report_dir;         /* default: <dir>/reports */
	struct gw_pipeline_cfg *pipelines;
	size_t pipeline_count;

	yaml_document_t doc; /* kept for option binding */
	bool doc_loaded;
};

/* Load and check @p path. Problems go to @p diag (file:line:col); returns
 * NULL if any error was found. The profile owns everything it points to. */
struct gw_profile *gw_profile_load(const char *path, struct gw_diag *diag);
void gw_profile_free(struct gw_profile *profile);

#endif
