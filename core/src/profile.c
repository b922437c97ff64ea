/* The profile loader. libyaml builds the document (with marks for every
 * node); this file walks it level by level against fixed key lists, so every
 * problem is reported at its own line and column with its key path, and all
 * of them are collected before giving up. */
#include "profile.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "secret.h"
#include "util.h"

#define DEFAULT_MAX_COUNT 500000
/* "35 MB" in Microsoft's IMAP migration limits; we read it as MiB, the larger
 * of the two readings, so nothing Exchange would accept is skipped. */
#define DEFAULT_MAX_SIZE    (35ull * 1024 * 1024)
#define DEFAULT_PARALLEL    4
#define DEFAULT_CONNECTIONS 8
/* Two lanes: 1.3-1.6 x one lane in the bench, where three or four gained nothing
 * on two cores (bench/PROFILE.md, sixth pass); well under the per-user limits of
 * Dovecot (10 per user and IP) and Gmail (15). */
#define DEFAULT_CONNECTIONS_PER_MAILBOX 2
#define DEFAULT_RETRIES                 5
/* A batch is the unit of commit; newest first is kept in date slices of four
 * batches, each fetched folder by folder (each folder in a slice costs a
 * SELECT). 4096 instead of 1024 took 5,000 messages over 30 folders from 0.68
 * to 0.60 s when a slice was one batch (bench/PROFILE.md). The byte cap bounds
 * what one flush makes durable and what a crash fetches again. */
#define DEFAULT_BATCH_MESSAGES 4096
#define DEFAULT_BATCH_BYTES    (128ull * 1024 * 1024)

struct loader {
	struct gw_profile *profile;
	yaml_document_t *doc;
	const char *file;
	struct gw_diag *diag;
};

/* One key a mapping may hold. */
struct key_spec {
	const char *name;
	bool required;
};

/* ---- reporting ---- */

static void report(struct loader *ld, const yaml_node_t *at, const char *fmt, ...) GW_PRINTF(3, 4);

static void report(struct loader *ld, const yaml_node_t *at, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = gw_xvasprintf(fmt, ap);
	va_end(ap);
	unsigned line = at ? (unsigned)at->start_mark.line + 1 : 0;
	unsigned column = at ? (unsigned)at->start_mark.column + 1 : 0;
	gw_diag_error(ld->diag, ld->file, line, column, "%s", msg);
	free(msg);
}

/* "path: " or nothing at the top level. */
static const char *prefix_sep(const char *path)
{
	return *path ? ": " : "";
}

static char *child_path(const char *parent, const char *key)
{
	return *parent ? gw_xasprintf("%s.%s", parent, key) : gw_xstrdup(key);
}

static char *item_path(const char *parent, size_t index)
{
	return gw_xasprintf("%s[%zu]", parent, index);
}

static const char *kind_name(const yaml_node_t *node)
{
	switch (node->type) {
	case YAML_MAPPING_NODE: return "a mapping";
	case YAML_SEQUENCE_NODE: return "a sequence";
	default: return "a scalar";
	}
}

static yaml_node_t *node_at(struct loader *ld, int id)
{
	return yaml_document_get_node(ld->doc, id);
}

static const char *text_of(const yaml_node_t *node)
{
	return (const char *)node->data.scalar.value;
}

static bool is_null(const yaml_node_t *node)
{
	if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	const char *t = text_of(node);
	return !*t || strcmp(t, "~") == 0 || strcmp(t, "null") == 0;
}

static size_t sequence_length(const yaml_node_t *node)
{
	return (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
}

/* ---- mappings against key lists ---- */

static char *key_list_text(const struct key_spec *keys, size_t n)
{
	struct gw_buf b = {0};
	gw_buf_puts(&b, "");
	for (size_t i = 0; i < n; i++)
		gw_buf_printf(&b, "%s%s", i ? ", " : "", keys[i].name);
	return b.data;
}

static void report_unknown_key(struct loader *ld, const yaml_node_t *key, const char *path,
                               const struct key_spec *keys, size_t n)
{
	const char **names = gw_xcalloc(n + 1, sizeof(*names));
	for (size_t i = 0; i < n; i++)
		names[i] = keys[i].name;
	const char *guess = gw_did_you_mean(text_of(key), names);
	char *list = key_list_text(keys, n);
	if (guess)
		report(ld, key, "%s%sunknown key '%s' (did you mean '%s'?); valid keys: %s", path,
		       prefix_sep(path), text_of(key), guess, list);
	else
		report(ld, key, "%s%sunknown key '%s'; valid keys: %s", path, prefix_sep(path),
		       text_of(key), list);
	free(list);
	free(names);
}

static bool expect_mapping(struct loader *ld, const yaml_node_t *node, const char *path)
{
	if (node->type == YAML_MAPPING_NODE)
		return true;
	if (is_null(node))
		report(ld, node, "%s%smissing value (expected a mapping)", path, prefix_sep(path));
	else
		report(ld, node, "%s%sexpected a mapping, got %s", path, prefix_sep(path),
		       kind_name(node));
	return false;
}

/* Fill values[i] with the value node of keys[i] (NULL if absent). Unknown
 * keys, duplicates and missing required keys are reported. */
static bool read_mapping_ids(struct loader *ld, const yaml_node_t *mapping, const char *path,
                             const struct key_spec *keys, size_t n, yaml_node_t **values, int *ids)
{
	memset(values, 0, n * sizeof(*values));
	if (!expect_mapping(ld, mapping, path))
		return false;
	yaml_node_t **key_nodes = gw_xcalloc(n + 1, sizeof(*key_nodes));
	for (yaml_node_pair_t *p = mapping->data.mapping.pairs.start;
	     p < mapping->data.mapping.pairs.top; p++) {
		yaml_node_t *key = node_at(ld, p->key);
		if (key->type != YAML_SCALAR_NODE) {
			report(ld, key, "%s%sexpected a plain key, got %s", path, prefix_sep(path),
			       kind_name(key));
			continue;
		}
		size_t i = 0;
		while (i < n && strcmp(keys[i].name, text_of(key)) != 0)
			i++;
		if (i == n) {
			report_unknown_key(ld, key, path, keys, n);
		} else if (key_nodes[i]) {
			char *kp = child_path(path, keys[i].name);
			report(ld, key, "%s: duplicate key (first set at line %u)", kp,
			       (unsigned)key_nodes[i]->start_mark.line + 1);
			free(kp);
		} else {
			key_nodes[i] = key;
			values[i] = node_at(ld, p->value);
			if (ids)
				ids[i] = p->value;
		}
	}
	free(key_nodes);
	for (size_t i = 0; i < n; i++)
		if (keys[i].required && !values[i])
			report(ld, mapping, "%s%smissing required key '%s'", path, prefix_sep(path),
			       keys[i].name);
	return true;
}

static bool read_mapping(struct loader *ld, const yaml_node_t *mapping, const char *path,
                         const struct key_spec *keys, size_t n, yaml_node_t **values)
{
	return read_mapping_ids(ld, mapping, path, keys, n, values, NULL);
}

/* ---- scalars ---- */

/* A non-empty scalar; @p what names the expectation ("a path", "a string"). */
static const char *scalar(struct loader *ld, const yaml_node_t *node, const char *path,
                          const char *what)
{
	if (node->type != YAML_SCALAR_NODE) {
		report(ld, node, "%s: expected %s, got %s", path, what, kind_name(node));
		return NULL;
	}
	if (is_null(node) || !*text_of(node)) {
		report(ld, node, "%s: missing value (expected %s)", path, what);
		return NULL;
	}
	return text_of(node);
}

static bool read_uint(struct loader *ld, const yaml_node_t *node, const char *path, int64_t min,
                      int64_t max, unsigned *out)
{
	const char *text = scalar(ld, node, path, "an integer");
	if (!text)
		return false;
	int64_t v;
	if (!gw_parse_int(text, &v) || v < min || v > max) {
		report(ld, node, "%s: expected an integer from %lld to %lld, got '%s'", path,
		       (long long)min, (long long)max, text);
		return false;
	}
	*out = (unsigned)v;
	return true;
}

static bool matches_charset(const char *s, const char *extra)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr(extra, *s)))
			return false;
	return true;
}

/* ---- paths ---- */

static char *resolve_path(const struct gw_profile *p, const char *path)
{
	if (path[0] == '/')
		return gw_xstrdup(path);
	while (path[0] == '.' && path[1] == '/')
		path += 2;
	char *joined = *path ? gw_xasprintf("%s/%s", p->dir, path) : gw_xstrdup(p->dir);
	size_t len = strlen(joined);
	while (len > 1 && joined[len - 1] == '/')
		joined[--len] = '\0';
	return joined;
}

static char *profile_dir(const char *path)
{
	char *dir = gw_path_dir(path);
	char *real = realpath(dir, NULL);
	if (!real)
		return dir;
	free(dir);
	/* realpath's memory is malloc'd; hand the caller one from our allocator. */
	char *copy = gw_xstrdup(real);
	free(real);
	return copy;
}

static char *read_path(struct loader *ld, const yaml_node_t *node, const char *path)
{
	const char *text = scalar(ld, node, path, "a path");
	return text ? resolve_path(ld->profile, text) : NULL;
}

/* One string or a sequence of strings. */
static bool read_string_list(struct loader *ld, const yaml_node_t *node, const char *path,
                             bool as_paths, char ***items, size_t *count)
{
	if (node->type == YAML_SCALAR_NODE) {
		char *one =
		        as_paths ? read_path(ld, node, path)
		                 : (scalar(ld, node, path, "a string") ? gw_xstrdup(text_of(node))
		                                                       : NULL);
		if (!one)
			return false;
		*items = gw_xcalloc(1, sizeof(**items));
		(*items)[0] = one;
		*count = 1;
		return true;
	}
	if (node->type != YAML_SEQUENCE_NODE) {
		report(ld, node, "%s: expected a string or a list of strings, got %s", path,
		       kind_name(node));
		return false;
	}
	size_t n = sequence_length(node);
	*items = gw_xcalloc(n ? n : 1, sizeof(**items));
	*count = 0;
	bool ok = true;
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = node_at(ld, node->data.sequence.items.start[i]);
		char *ip = item_path(path, i);
		const char *text = scalar(ld, item, ip, as_paths ? "a path" : "a string");
		if (text)
			(*items)[(*count)++] =
			        as_paths ? resolve_path(ld->profile, text) : gw_xstrdup(text);
		else
			ok = false;
		free(ip);
	}
	return ok;
}

/* ---- top level ---- */

static void read_version(struct loader *ld, const yaml_node_t *node)
{
	const char *text = scalar(ld, node, "version", "an integer");
	if (!text)
		return;
	int64_t v;
	if (!gw_parse_int(text, &v)) {
		report(ld, node, "version: expected an integer, got '%s'", text);
		return;
	}
	if (v != 1) {
		report(ld, node,
		       "version: unsupported profile version %s (this godwit reads version 1)",
		       text);
		return;
	}
	ld->profile->version = 1;
}

/* ---- pipelines ---- */

static void read_endpoint(struct loader *ld, yaml_node_t *node, int node_id, const char *path,
                          struct gw_endpoint_cfg *ep)
{
	ep->key_path = gw_xstrdup(path);
	if (!expect_mapping(ld, node, path))
		return;
	ep->options_node = node_id;
	ep->line = (unsigned)node->start_mark.line + 1;
	ep->column = (unsigned)node->start_mark.column + 1;
	yaml_node_t *plugin = NULL;
	/* Only `plugin` is ours; the other keys belong to the plugin's option
	 * table and are checked when it is loaded. */
	for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *key = node_at(ld, p->key);
		if (key->type == YAML_SCALAR_NODE && strcmp(text_of(key), "plugin") == 0) {
			if (plugin) {
				report(ld, key, "%s.plugin: duplicate key (first set at line %u)",
				       path, (unsigned)plugin->start_mark.line + 1);
				continue;
			}
			plugin = node_at(ld, p->value);
		}
	}
	if (!plugin) {
		report(ld, node, "%s: missing required key 'plugin'", path);
		return;
	}
	char *pp = child_path(path, "plugin");
	const char *name = scalar(ld, plugin, pp, "a plugin name");
	if (name && !matches_charset(name, "_-"))
		report(ld, plugin,
		       "%s: expected a plugin name (letters, digits, '_' and '-'), got '%s'", pp,
		       name);
	else if (name)
		ep->plugin = gw_xstrdup(name);
	free(pp);
}

static bool email_taken(const struct gw_pipeline_cfg *pl, size_t upto, const char *email,
                        unsigned *line)
{
	for (size_t i = 0; i < upto; i++) {
		if (pl->mailboxes[i].email && strcasecmp(pl->mailboxes[i].email, email) == 0) {
			*line = pl->mailboxes[i].line;
			return true;
		}
	}
	return false;
}

static void read_inline_mailbox(struct loader *ld, yaml_node_t *node, const char *path,
                                struct gw_pipeline_cfg *pl)
{
	static const struct key_spec keys[] = {
	        {"email", true}, {"username", false}, {"password", false}};
	yaml_node_t *v[3];
	if (!read_mapping(ld, node, path, keys, 3, v))
		return;
	struct gw_inline_mailbox *mb = &pl->mailboxes[pl->mailbox_count];
	mb->line = (unsigned)node->start_mark.line + 1;
	mb->column = (unsigned)node->start_mark.column + 1;
	char *kp = child_path(path, "email");
	const char *email = v[0] ? scalar(ld, v[0], kp, "an email address") : NULL;
	unsigned first;
	if (email && !strchr(email, '@'))
		report(ld, v[0], "%s: expected an email address, got '%s'", kp, email);
	else if (email && email_taken(pl, pl->mailbox_count, email, &first))
		report(ld, v[0], "%s: duplicate mailbox '%s' (first listed at line %u)", kp, email,
		       first);
	else if (email)
		mb->email = gw_xstrdup(email);
	free(kp);
	for (size_t i = 1; i < 3; i++) {
		if (!v[i])
			continue;
		kp = child_path(path, keys[i].name);
		const char *text = scalar(ld, v[i], kp, "a string");
		if (text)
			*(i == 1 ? &mb->username : &mb->password) = gw_xstrdup(text);
		/* References are resolved (and registered) by the plan; a literal
		 * password is a secret from the moment it is read. */
		if (text && i == 2 && !gw_secret_is_reference(text))
			gw_log_register_secret(text);
		free(kp);
	}
	pl->mailbox_count++;
}

static void read_mailbox_list(struct loader *ld, yaml_node_t *node, const char *path,
                              struct gw_pipeline_cfg *pl)
{
	if (node->type != YAML_SEQUENCE_NODE) {
		report(ld, node, "%s: expected a list of mailboxes, got %s", path, kind_name(node));
		return;
	}
	size_t n = sequence_length(node);
	pl->mailboxes = gw_xcalloc(n ? n : 1, sizeof(*pl->mailboxes));
	for (size_t i = 0; i < n; i++) {
		char *ip = item_path(path, i);
		read_inline_mailbox(ld, node_at(ld, node->data.sequence.items.start[i]), ip, pl);
		free(ip);
	}
}

static void read_mailboxes(struct loader *ld, yaml_node_t *node, const char *path,
                           struct gw_pipeline_cfg *pl)
{
	static const struct key_spec keys[] = {{"csv", false}, {"list", false}};
	yaml_node_t *v[2];
	if (!read_mapping(ld, node, path, keys, 2, v))
		return;
	if (!v[0] && !v[1]) {
		report(ld, node, "%s: expected 'csv' (a file) or 'list' (inline mailboxes)", path);
		return;
	}
	if (v[0]) {
		char *kp = child_path(path, "csv");
		pl->mailboxes_csv = read_path(ld, v[0], kp);
		free(kp);
	}
	if (v[1]) {
		char *kp = child_path(path, "list");
		read_mailbox_list(ld, v[1], kp, pl);
		free(kp);
	}
}

static size_t count_stars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += *s == '*';
	return n;
}

static bool check_map_rule(struct loader *ld, const yaml_node_t *key, const yaml_node_t *value,
                           const char *path)
{
	size_t from_stars = count_stars(text_of(key));
	size_t to_stars = count_stars(text_of(value));
	if (from_stars > 1) {
		report(ld, key, "%s: pattern '%s' has more than one '*'", path, text_of(key));
		return false;
	}
	if (to_stars > from_stars) {
		report(ld, value,
		       "%s: replacement '%s' uses '*' but its pattern '%s' has none to take it "
		       "from",
		       path, text_of(value), text_of(key));
		return false;
	}
	return true;
}

static void read_folder_map(struct loader *ld, yaml_node_t *node, const char *path,
                            struct gw_pipeline_cfg *pl)
{
	if (!expect_mapping(ld, node, path))
		return;
	size_t n = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
	pl->folder_map = gw_xcalloc(n ? n : 1, sizeof(*pl->folder_map));
	for (size_t i = 0; i < n; i++) {
		yaml_node_pair_t *p = &node->data.mapping.pairs.start[i];
		yaml_node_t *key = node_at(ld, p->key);
		yaml_node_t *value = node_at(ld, p->value);
		if (!scalar(ld, key, path, "a folder pattern as key"))
			continue;
		char *kp = gw_xasprintf("%s.\"%s\"", path, text_of(key));
		bool ok = scalar(ld, value, kp, "a folder name") &&
		          check_map_rule(ld, key, value, kp);
		for (size_t j = 0; ok && j < pl->folder_map_count; j++) {
			if (strcmp(pl->folder_map[j].from, text_of(key)) == 0) {
				report(ld, key, "%s: duplicate key", kp);
				ok = false;
			}
		}
		if (ok) {
			pl->folder_map[pl->folder_map_count].from = gw_xstrdup(text_of(key));
			pl->folder_map[pl->folder_map_count].to = gw_xstrdup(text_of(value));
			pl->folder_map_count++;
		}
		free(kp);
	}
}

static void read_folders(struct loader *ld, yaml_node_t *node, const char *path,
                         struct gw_pipeline_cfg *pl)
{
	static const struct key_spec keys[] = {
	        {"include", false}, {"exclude", false}, {"map", false}};
	yaml_node_t *v[3];
	if (!read_mapping(ld, node, path, keys, 3, v))
		return;
	char *kp;
	if (v[0]) {
		kp = child_path(path, "include");
		read_string_list(ld, v[0], kp, false, &pl->folders_include,
		                 &pl->folders_include_count);
		free(kp);
	}
	if (v[1]) {
		kp = child_path(path, "exclude");
		read_string_list(ld, v[1], kp, false, &pl->folders_exclude,
		                 &pl->folders_exclude_count);
		free(kp);
	}
	if (v[2]) {
		kp = child_path(path, "map");
		read_folder_map(ld, v[2], kp, pl);
		free(kp);
	}
}

static void read_positive_size(struct loader *ld, const yaml_node_t *node, const char *path,
                               uint64_t *out)
{
	const char *text = scalar(ld, node, path, "a size");
	if (!text)
		return;
	uint64_t bytes;
	if (!gw_parse_size(text, &bytes))
		report(ld, node,
		       "%s: expected a size such as 35MB, 512KiB or 100 (bytes), got '%s'", path,
		       text);
	else if (bytes == 0)
		report(ld, node, "%s: expected a size greater than 0, got '%s'", path, text);
	else
		*out = bytes;
}

static void read_since(struct loader *ld, const yaml_node_t *node, const char *path, int64_t *out)
{
	const char *text = scalar(ld, node, path, "a date");
	if (text && !gw_parse_date(text, out))
		report(ld, node,
		       "%s: expected a date such as 2015-01-01 or 2015-01-01T00:00:00Z, got '%s'",
		       path, text);
}

static void read_messages(struct loader *ld, yaml_node_t *node, const char *path,
                          struct gw_pipeline_cfg *pl)
{
	static const struct key_spec keys[] = {
	        {"max_count", false}, {"max_size", false}, {"since", false}};
	yaml_node_t *v[3];
	if (!read_mapping(ld, node, path, keys, 3, v))
		return;
	char *kp;
	if (v[0]) {
		kp = child_path(path, "max_count");
		const char *text = scalar(ld, v[0], kp, "an integer");
		int64_t n;
		if (text && (!gw_parse_int(text, &n) || n < 1))
			report(ld, v[0], "%s: expected an integer of at least 1, got '%s'", kp,
			       text);
		else if (text)
			pl->max_count = (uint64_t)n;
		free(kp);
	}
	if (v[1]) {
		kp = child_path(path, "max_size");
		read_positive_size(ld, v[1], kp, &pl->max_size);
		free(kp);
	}
	if (v[2]) {
		kp = child_path(path, "since");
		read_since(ld, v[2], kp, &pl->since);
		free(kp);
	}
}

static void read_limits(struct loader *ld, yaml_node_t *node, const char *path,
                        struct gw_pipeline_cfg *pl)
{
	static const struct key_spec keys[] = {{"mailboxes_in_parallel", false},
	                                       {"source_connections", false},
	                                       {"sink_connections", false},
	                                       {"connections_per_mailbox", false},
	                                       {"retries", false},
	                                       {"batch_messages", false},
	                                       {"batch_bytes", false}};
	enum { KEY_COUNT = sizeof(keys) / sizeof(keys[0]) };
	unsigned *fields[] = {&pl->mailboxes_in_parallel,
	                      &pl->source_connections,
	                      &pl->sink_connections,
	                      &pl->connections_per_mailbox,
	                      &pl->retries,
	                      &pl->batch_messages};
	static const int64_t min[] = {1, 1, 1, 1, 0, 1};
	static const int64_t max[] = {256, 1024, 1024, 16, 100, 65536};
	yaml_node_t *v[KEY_COUNT];
	if (!read_mapping(ld, node, path, keys, KEY_COUNT, v))
		return;
	for (size_t i = 0; i < KEY_COUNT; i++) {
		if (!v[i])
			continue;
		char *kp = child_path(path, keys[i].name);
		if (i < sizeof(fields) / sizeof(fields[0]))
			read_uint(ld, v[i], kp, min[i], max[i], fields[i]);
		else /* batch_bytes, the one size among counts */
			read_positive_size(ld, v[i], kp, &pl->batch_bytes);
		free(kp);
	}
}

static void set_pipeline_defaults(struct gw_pipeline_cfg *pl)
{
	pl->max_count = DEFAULT_MAX_COUNT;
	pl->max_size = DEFAULT_MAX_SIZE;
	pl->mailboxes_in_parallel = DEFAULT_PARALLEL;
	pl->source_connections = DEFAULT_CONNECTIONS;
	pl->sink_connections = DEFAULT_CONNECTIONS;
	pl->connections_per_mailbox = DEFAULT_CONNECTIONS_PER_MAILBOX;
	pl->retries = DEFAULT_RETRIES;
	pl->batch_messages = DEFAULT_BATCH_MESSAGES;
	pl->batch_bytes = DEFAULT_BATCH_BYTES;
}

static void read_pipeline_name(struct loader *ld, const yaml_node_t *node, const char *path,
                               struct gw_pipeline_cfg *pl, size_t index)
{
	char *kp = child_path(path, "name");
	const char *name = scalar(ld, node, kp, "a pipeline name");
	if (name && !matches_charset(name, "._-")) {
		report(ld, node,
		       "%s: expected a pipeline name (letters, digits, '.', '_' and '-'), got '%s'",
		       kp, name);
		name = NULL;
	}
	for (size_t i = 0; name && i < index; i++) {
		const struct gw_pipeline_cfg *other = &ld->profile->pipelines[i];
		if (other->name && strcmp(other->name, name) == 0) {
			report(ld, node, "%s: duplicate pipeline name '%s' (first used at line %u)",
			       kp, name, other->line);
			name = NULL;
		}
	}
	if (name)
		pl->name = gw_xstrdup(name);
	free(kp);
}

enum pipeline_key { PK_NAME, PK_SOURCE, PK_SINK, PK_MAILBOXES, PK_FOLDERS, PK_MESSAGES, PK_LIMITS };

static void read_pipeline(struct loader *ld, const yaml_node_item_t *item, size_t index)
{
	static const struct key_spec keys[] = {
	        {"name", true},     {"source", true},    {"sink", true},    {"mailboxes", true},
	        {"folders", false}, {"messages", false}, {"limits", false},
	};
	struct gw_pipeline_cfg *pl = &ld->profile->pipelines[index];
	set_pipeline_defaults(pl);
	yaml_node_t *node = node_at(ld, *item);
	char *path = item_path("pipelines", index);
	pl->line = (unsigned)node->start_mark.line + 1;
	pl->column = (unsigned)node->start_mark.column + 1;
	yaml_node_t *v[7];
	int ids[7] = {0};
	if (read_mapping_ids(ld, node, path, keys, 7, v, ids)) {
		if (v[PK_NAME])
			read_pipeline_name(ld, v[PK_NAME], path, pl, index);
		if (v[PK_SOURCE]) {
			char *kp = child_path(path, "source");
			read_endpoint(ld, v[PK_SOURCE], ids[PK_SOURCE], kp, &pl->source);
			free(kp);
		}
		if (v[PK_SINK]) {
			char *kp = child_path(path, "sink");
			read_endpoint(ld, v[PK_SINK], ids[PK_SINK], kp, &pl->sink);
			free(kp);
		}
		void (*readers[])(struct loader *, yaml_node_t *, const char *,
		                  struct gw_pipeline_cfg *) = {read_mailboxes, read_folders,
		                                               read_messages, read_limits};
		for (size_t k = PK_MAILBOXES; k <= PK_LIMITS; k++) {
			if (!v[k])
				continue;
			char *kp = child_path(path, keys[k].name);
			readers[k - PK_MAILBOXES](ld, v[k], kp, pl);
			free(kp);
		}
	}
	free(path);
}

static void read_pipelines(struct loader *ld, yaml_node_t *node)
{
	if (node->type != YAML_SEQUENCE_NODE) {
		if (is_null(node))
			report(ld, node, "pipelines: missing value (expected a list of pipelines)");
		else
			report(ld, node, "pipelines: expected a list of pipelines, got %s",
			       kind_name(node));
		return;
	}
	size_t n = sequence_length(node);
	if (n == 0) {
		report(ld, node, "pipelines: expected at least one pipeline");
		return;
	}
	struct gw_profile *p = ld->profile;
	p->pipelines = gw_xcalloc(n, sizeof(*p->pipelines));
	p->pipeline_count = n;
	for (size_t i = 0; i < n; i++)
		read_pipeline(ld, &node->data.sequence.items.start[i], i);
}

enum top_key { TK_VERSION, TK_PLUGIN_PATH, TK_STATE, TK_REPORT, TK_PIPELINES };

static void read_root(struct loader *ld, yaml_node_t *root)
{
	static const struct key_spec keys[] = {{"version", true},
	                                       {"plugin_path", false},
	                                       {"state", false},
	                                       {"report", false},
	                                       {"pipelines", true}};
	struct gw_profile *p = ld->profile;
	yaml_node_t *v[5];
	if (root->type != YAML_MAPPING_NODE) {
		report(ld, root,
		       "expected a mapping with 'version' and 'pipelines' at the top, got %s",
		       kind_name(root));
		return;
	}
	read_mapping(ld, root, "", keys, 5, v);
	if (v[TK_VERSION])
		read_version(ld, v[TK_VERSION]);
	if (v[TK_PLUGIN_PATH])
		read_string_list(ld, v[TK_PLUGIN_PATH], "plugin_path", true, &p->plugin_path,
		                 &p->plugin_path_count);
	p->state_path = v[TK_STATE] ? read_path(ld, v[TK_STATE], "state") : NULL;
	if (!p->state_path)
		p->state_path = resolve_path(p, "godwit-state.db");
	p->report_dir = v[TK_REPORT] ? read_path(ld, v[TK_REPORT], "report") : NULL;
	if (!p->report_dir)
		p->report_dir = resolve_path(p, "reports");
	if (v[TK_PIPELINES])
		read_pipelines(ld, v[TK_PIPELINES]);
}

/* ---- YAML parsing ---- */

static void report_syntax_error(struct loader *ld, const yaml_parser_t *parser)
{
	const char *problem = parser->problem ? parser->problem : "unknown problem";
	if (parser->error == YAML_READER_ERROR) {
		/* Encoding problems have a byte offset, not a mark. */
		gw_diag_error(ld->diag, ld->file, 0, 0, "cannot read YAML: %s at byte offset %zu",
		              problem, parser->problem_offset);
		return;
	}
	unsigned line = (unsigned)parser->problem_mark.line + 1;
	unsigned column = (unsigned)parser->problem_mark.column + 1;
	if (parser->context)
		gw_diag_error(ld->diag, ld->file, line, column,
		              "YAML syntax error: %s (%s at line %u, column %u)", problem,
		              parser->context, (unsigned)parser->context_mark.line + 1,
		              (unsigned)parser->context_mark.column + 1);
	else
		gw_diag_error(ld->diag, ld->file, line, column, "YAML syntax error: %s", problem);
}

/* A second document ("---") would be silently ignored by a loader that
 * stops at the first; a profile is one document. */
static void check_single_document(struct loader *ld, yaml_parser_t *parser)
{
	yaml_document_t extra;
	if (!yaml_parser_load(parser, &extra)) {
		report_syntax_error(ld, parser);
		return;
	}
	yaml_node_t *root = yaml_document_get_root_node(&extra);
	if (root)
		gw_diag_error(ld->diag, ld->file, (unsigned)extra.start_mark.line + 1,
		              (unsigned)extra.start_mark.column + 1,
		              "a profile is one YAML document; found a second one here");
	yaml_document_delete(&extra);
}

static bool parse_document(struct loader *ld, FILE *f)
{
	yaml_parser_t parser;
	if (!yaml_parser_initialize(&parser)) {
		gw_diag_error(ld->diag, ld->file, 0, 0, "cannot initialise the YAML parser");
		return false;
	}
	yaml_parser_set_input_file(&parser, f);
	bool ok = yaml_parser_load(&parser, ld->doc);
	if (!ok)
		report_syntax_error(ld, &parser);
	else if (yaml_document_get_root_node(ld->doc))
		check_single_document(ld, &parser);
	yaml_parser_delete(&parser);
	return ok;
}

struct gw_profile *gw_profile_load(const char *path, struct gw_diag *diag)
{
	size_t errors_before = diag->errors;
	FILE *f = fopen(path, "rb");
	if (!f) {
		gw_diag_error(diag, path, 0, 0, "cannot open profile: %s", strerror(errno));
		return NULL;
	}
	struct gw_profile *p = gw_xcalloc(1, sizeof(*p));
	p->path = gw_xstrdup(path);
	p->dir = profile_dir(path);
	struct loader ld = {.profile = p, .doc = &p->doc, .file = path, .diag = diag};
	p->doc_loaded = parse_document(&ld, f);
	fclose(f);
	if (p->doc_loaded) {
		yaml_node_t *root = yaml_document_get_root_node(&p->doc);
		if (!root)
			gw_diag_error(
			        diag, path, 0, 0,
			        "the profile is empty (expected 'version: 1' and 'pipelines')");
		else
			read_root(&ld, root);
	}
	if (diag->errors != errors_before) {
		gw_profile_free(p);
		return NULL;
	}
	return p;
}

/* ---- freeing ---- */

static void free_strings(char **items, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(items[i]);
	free(items);
}

static void free_pipeline(struct gw_pipeline_cfg *pl)
{
	free(pl->name);
	free(pl->source.plugin);
	free(pl->source.key_path);
	free(pl->sink.plugin);
	free(pl->sink.key_path);
	free(pl->mailboxes_csv);
	for (size_t i = 0; i < pl->mailbox_count; i++) {
		free(pl->mailboxes[i].email);
		free(pl->mailboxes[i].username);
		free(pl->mailboxes[i].password);
	}
	free(pl->mailboxes);
	free_strings(pl->folders_include, pl->folders_include_count);
	free_strings(pl->folders_exclude, pl->folders_exclude_count);
	for (size_t i = 0; i < pl->folder_map_count; i++) {
		free(pl->folder_map[i].from);
		free(pl->folder_map[i].to);
	}
	free(pl->folder_map);
}

void gw_profile_free(struct gw_profile *profile)
{
	if (!profile)
		return;
	for (size_t i = 0; i < profile->pipeline_count; i++)
		free_pipeline(&profile->pipelines[i]);
	free(profile->pipelines);
	free_strings(profile->plugin_path, profile->plugin_path_count);
	free(profile->state_path);
	free(profile->report_dir);
	free(profile->path);
	free(profile->dir);
	if (profile->doc_loaded)
		yaml_document_delete(&profile->doc);
	free(profile);
}
