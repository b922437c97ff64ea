/* Binding a YAML mapping into a plugin's config struct through its option
 * table. The table is the single source of truth: the keys it lists are the
 * valid keys, its types pick the parser, its defaults go through the same
 * parser as profile values (so a bad default is caught the same way). */
#include "optbind.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "secret.h"
#include "util.h"

/* Everything bound values point to, freed in one go with the pipeline. */
struct gw_optstore {
	void **ptrs;
	size_t count;
	size_t cap;
	char **secrets; /* wiped before they are freed */
	size_t secret_count;
	char *base_dir; /* GW_OPT_PATH values are relative to it; NULL: kept as written */
};

struct gw_optstore *gw_optstore_new(const char *base_dir)
{
	struct gw_optstore *store = gw_xcalloc(1, sizeof(struct gw_optstore));
	store->base_dir = base_dir ? gw_xstrdup(base_dir) : NULL;
	return store;
}

static void *store_keep(struct gw_optstore *store, void *ptr)
{
	if (store->count == store->cap) {
		store->cap = store->cap ? store->cap * 2 : 16;
		store->ptrs = gw_xrealloc(store->ptrs, store->cap * sizeof(*store->ptrs));
	}
	store->ptrs[store->count++] = ptr;
	return ptr;
}

/* Secrets are wiped before their memory goes back to the allocator. */
static void store_keep_secret(struct gw_optstore *store, char *secret)
{
	store->secrets =
	        gw_xrealloc(store->secrets, (store->secret_count + 1) * sizeof(*store->secrets));
	store->secrets[store->secret_count++] = secret;
}

void gw_optstore_free(struct gw_optstore *store)
{
	if (!store)
		return;
	for (size_t i = 0; i < store->count; i++)
		free(store->ptrs[i]);
	for (size_t i = 0; i < store->secret_count; i++) {
		/* volatile: an optimiser may drop a memset right before free(). */
		volatile char *v = store->secrets[i];
		while (*v)
			*v++ = '\0';
		free(store->secrets[i]);
	}
	free(store->secrets);
	free(store->ptrs);
	free(store->base_dir);
	free(store);
}

const char *gw_option_type_name(enum gw_opt_type type)
{
	switch (type) {
	case GW_OPT_STRING: return "string";
	case GW_OPT_INT: return "int";
	case GW_OPT_BOOL: return "bool";
	case GW_OPT_SIZE: return "size";
	case GW_OPT_DURATION: return "duration";
	case GW_OPT_ENUM: return "enum";
	case GW_OPT_LIST: return "list";
	case GW_OPT_SECRET: return "secret";
	case GW_OPT_PATH: return "path";
	}
	return "unknown";
}

/* "an integer", "a size": for messages. */
static const char *type_with_article(enum gw_opt_type type)
{
	switch (type) {
	case GW_OPT_INT: return "an integer";
	case GW_OPT_ENUM: return "an enum value";
	case GW_OPT_LIST: return "a list of strings";
	case GW_OPT_STRING: return "a string";
	case GW_OPT_BOOL: return "a bool";
	case GW_OPT_SIZE: return "a size";
	case GW_OPT_DURATION: return "a duration";
	case GW_OPT_SECRET: return "a secret";
	case GW_OPT_PATH: return "a path";
	}
	return "a value";
}

static void *field(void *config, const struct gw_option *opt)
{
	return (char *)config + opt->offset;
}

static const void *const_field(const void *config, const struct gw_option *opt)
{
	return (const char *)config + opt->offset;
}

static char *choices_text(const char *const *choices)
{
	struct gw_buf b = {0};
	gw_buf_puts(&b, "");
	for (size_t i = 0; choices && choices[i]; i++)
		gw_buf_printf(&b, "%s%s", i ? ", " : "", choices[i]);
	return b.data;
}

static bool parse_enum(const struct gw_option *opt, const char *text, int *index, char **error)
{
	for (int i = 0; opt->choices && opt->choices[i]; i++) {
		if (strcmp(opt->choices[i], text) == 0) {
			*index = i;
			return true;
		}
	}
	char *list = choices_text(opt->choices);
	*error = gw_xasprintf("expected one of %s, got '%s'", list, text);
	free(list);
	return false;
}

static void bind_list(void *config, const struct gw_option *opt, const char *const *items,
                      size_t count, struct gw_optstore *store)
{
	const char **copy = store_keep(store, gw_xcalloc(count + 1, sizeof(*copy)));
	for (size_t i = 0; i < count; i++)
		copy[i] = store_keep(store, gw_xstrdup(items[i]));
	struct gw_str_list *list = field(config, opt);
	list->count = count;
	list->items = copy;
}

static bool parse_secret(const struct gw_option *opt, const char *text, void *config,
                         struct gw_optstore *store, char **error)
{
	char *value;
	if (!gw_secret_resolve(text, &value, error))
		return false;
	store_keep_secret(store, value);
	*(const char **)field(config, opt) = value;
	return true;
}

static bool parse_scalar_number(const struct gw_option *opt, const char *text, void *config,
                                char **error)
{
	switch (opt->type) {
	case GW_OPT_INT:
		if (gw_parse_int(text, field(config, opt)))
			return true;
		*error = gw_xasprintf("expected an integer, got '%s'", text);
		return false;
	case GW_OPT_BOOL:
		if (gw_parse_bool(text, field(config, opt)))
			return true;
		*error = gw_xasprintf("expected true or false (or yes/no, on/off), got '%s'", text);
		return false;
	case GW_OPT_SIZE:
		if (gw_parse_size(text, field(config, opt)))
			return true;
		*error = gw_xasprintf(
		        "expected a size such as 35MB, 512KiB or 100 (bytes), got '%s'", text);
		return false;
	case GW_OPT_DURATION:
		if (gw_parse_duration(text, field(config, opt)))
			return true;
		*error = gw_xasprintf(
		        "expected a duration such as 500ms, 30s, 5m, 1h or 2d, got '%s'", text);
		return false;
	default:
		*error = gw_xasprintf("option type %d is not a number type", (int)opt->type);
		return false;
	}
}

bool gw_option_parse_value(const struct gw_option *opt, const char *text, void *config,
                           struct gw_optstore *store, char **error)
{
	*error = NULL;
	switch (opt->type) {
	case GW_OPT_STRING:
		*(const char **)field(config, opt) = store_keep(store, gw_xstrdup(text));
		return true;
	case GW_OPT_SECRET: return parse_secret(opt, text, config, store, error);
	case GW_OPT_PATH:
		*(const char **)field(config, opt) =
		        store_keep(store, text[0] != '/' && store->base_dir
		                                  ? gw_xasprintf("%s/%s", store->base_dir, text)
		                                  : gw_xstrdup(text));
		return true;
	case GW_OPT_ENUM: return parse_enum(opt, text, field(config, opt), error);
	case GW_OPT_LIST: bind_list(config, opt, &text, 1, store); return true;
	case GW_OPT_INT:
	case GW_OPT_BOOL:
	case GW_OPT_SIZE:
	case GW_OPT_DURATION: return parse_scalar_number(opt, text, config, error);
	}
	*error = gw_xasprintf("option has an unknown type (%d)", (int)opt->type);
	return false;
}

/* ---- binding a mapping ---- */

struct binder {
	const struct gw_option *table;
	yaml_document_t *doc;
	const char *file;
	const char *key_path;
	const char *const *skip_keys;
	void *config;
	struct gw_optstore *store;
	struct gw_diag *diag;
	yaml_node_t **seen_at; /* per option: the key node that set it */
	size_t option_count;
};

static unsigned mark_line(const yaml_node_t *node)
{
	return node ? (unsigned)node->start_mark.line + 1 : 0;
}

static unsigned mark_column(const yaml_node_t *node)
{
	return node ? (unsigned)node->start_mark.column + 1 : 0;
}

static const char *node_kind_name(const yaml_node_t *node)
{
	switch (node->type) {
	case YAML_MAPPING_NODE: return "a mapping";
	case YAML_SEQUENCE_NODE: return "a sequence";
	default: return "a scalar";
	}
}

static const char *scalar_text(const yaml_node_t *node)
{
	return (const char *)node->data.scalar.value;
}

/* A plain empty scalar is YAML's null: `port:` with nothing after it. */
static bool is_null_scalar(const yaml_node_t *node)
{
	if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	const char *t = scalar_text(node);
	return !*t || strcmp(t, "~") == 0 || strcmp(t, "null") == 0;
}

static bool is_skipped(const struct binder *b, const char *key)
{
	for (size_t i = 0; b->skip_keys && b->skip_keys[i]; i++)
		if (strcmp(b->skip_keys[i], key) == 0)
			return true;
	return false;
}

static const struct gw_option *find_option(const struct binder *b, const char *key, size_t *index)
{
	for (size_t i = 0; i < b->option_count; i++) {
		if (strcmp(b->table[i].name, key) == 0) {
			*index = i;
			return &b->table[i];
		}
	}
	return NULL;
}

/* Valid keys in table order, then the keys the caller handles itself. */
static const char **valid_keys(const struct binder *b)
{
	size_t skip_count = 0;
	while (b->skip_keys && b->skip_keys[skip_count])
		skip_count++;
	const char **keys = gw_xcalloc(b->option_count + skip_count + 1, sizeof(*keys));
	size_t n = 0;
	for (size_t i = 0; i < b->option_count; i++)
		keys[n++] = b->table[i].name;
	for (size_t i = 0; i < skip_count; i++) {
		size_t unused;
		if (!find_option(b, b->skip_keys[i], &unused))
			keys[n++] = b->skip_keys[i];
	}
	keys[n] = NULL;
	return keys;
}

static void report_unknown_key(struct binder *b, const yaml_node_t *key_node)
{
	const char *key = scalar_text(key_node);
	const char **keys = valid_keys(b);
	char *list = choices_text(keys);
	const char *suggestion = gw_did_you_mean(key, keys);
	char *hint =
	        suggestion ? gw_xasprintf(" (did you mean '%s'?)", suggestion) : gw_xstrdup("");
	gw_diag_error(b->diag, b->file, mark_line(key_node), mark_column(key_node),
	              "%s: unknown key '%s'%s; valid keys: %s", b->key_path, key, hint,
	              *list ? list : "(none)");
	free(hint);
	free(list);
	free(keys);
}

static void report_value_error(struct binder *b, const struct gw_option *opt,
                               const yaml_node_t *node, const char *message)
{
	gw_diag_error(b->diag, b->file, mark_line(node), mark_column(node), "%s.%s: %s",
	              b->key_path, opt->name, message);
}

/* What a value of @p opt looks like, for "expected ..., got ..." (caller frees). */
static char *describe_expected(const struct gw_option *opt)
{
	if (opt->type != GW_OPT_ENUM)
		return gw_xstrdup(type_with_article(opt->type));
	char *list = choices_text(opt->choices);
	char *text = gw_xasprintf("one of %s", list);
	free(list);
	return text;
}

static void bind_sequence(struct binder *b, const struct gw_option *opt, yaml_node_t *seq)
{
	size_t count = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
	const char **items = gw_xcalloc(count + 1, sizeof(*items));
	bool ok = true;
	for (size_t i = 0; i < count; i++) {
		yaml_node_t *item =
		        yaml_document_get_node(b->doc, seq->data.sequence.items.start[i]);
		if (!item || item->type != YAML_SCALAR_NODE) {
			gw_diag_error(b->diag, b->file, mark_line(item), mark_column(item),
			              "%s.%s[%zu]: expected a string, got %s", b->key_path,
			              opt->name, i, item ? node_kind_name(item) : "nothing");
			ok = false;
			continue;
		}
		items[i] = scalar_text(item);
	}
	if (ok)
		bind_list(b->config, opt, items, count, b->store);
	free(items);
}

static void bind_value(struct binder *b, const struct gw_option *opt, yaml_node_t *value)
{
	if (opt->type == GW_OPT_LIST && value->type == YAML_SEQUENCE_NODE) {
		bind_sequence(b, opt, value);
		return;
	}
	if (value->type != YAML_SCALAR_NODE) {
		char *expected = describe_expected(opt);
		char *msg = gw_xasprintf("expected %s, got %s", expected, node_kind_name(value));
		free(expected);
		report_value_error(b, opt, value, msg);
		free(msg);
		return;
	}
	if (is_null_scalar(value)) {
		char *expected = describe_expected(opt);
		char *msg = gw_xasprintf("missing value (expected %s)", expected);
		free(expected);
		report_value_error(b, opt, value, msg);
		free(msg);
		return;
	}
	char *error = NULL;
	if (!gw_option_parse_value(opt, scalar_text(value), b->config, b->store, &error))
		report_value_error(b, opt, value, error);
	free(error);
}

static void bind_pair(struct binder *b, yaml_node_pair_t *pair)
{
	yaml_node_t *key = yaml_document_get_node(b->doc, pair->key);
	yaml_node_t *value = yaml_document_get_node(b->doc, pair->value);
	if (!key || !value)
		return;
	if (key->type != YAML_SCALAR_NODE) {
		gw_diag_error(b->diag, b->file, mark_line(key), mark_column(key),
		              "%s: expected a plain key, got %s", b->key_path, node_kind_name(key));
		return;
	}
	const char *name = scalar_text(key);
	if (is_skipped(b, name))
		return;
	size_t index;
	const struct gw_option *opt = find_option(b, name, &index);
	if (!opt) {
		report_unknown_key(b, key);
		return;
	}
	if (b->seen_at[index]) {
		gw_diag_error(b->diag, b->file, mark_line(key), mark_column(key),
		              "%s.%s: duplicate key (first set at line %u)", b->key_path, name,
		              mark_line(b->seen_at[index]));
		return;
	}
	b->seen_at[index] = key;
	bind_value(b, opt, value);
}

/* Options the profile left out: required ones are errors, the rest get defaults. */
static void apply_missing(struct binder *b, const yaml_node_t *mapping)
{
	for (size_t i = 0; i < b->option_count; i++) {
		const struct gw_option *opt = &b->table[i];
		if (b->seen_at[i] || is_skipped(b, opt->name))
			continue;
		if (opt->flags & GW_OPT_REQUIRED) {
			gw_diag_error(b->diag, b->file, mark_line(mapping), mark_column(mapping),
			              "%s: missing required key '%s' (%s)", b->key_path, opt->name,
			              gw_option_type_name(opt->type));
			continue;
		}
		if (!opt->default_value)
			continue;
		char *error = NULL;
		if (!gw_option_parse_value(opt, opt->default_value, b->config, b->store, &error))
			gw_diag_error(b->diag, b->file, mark_line(mapping), mark_column(mapping),
			              "%s: plugin option '%s' has an invalid default '%s': %s",
			              b->key_path, opt->name, opt->default_value, error);
		free(error);
	}
}

static size_t count_options(const struct gw_option *table)
{
	size_t n = 0;
	while (table && table[n].name)
		n++;
	return n;
}

bool gw_options_bind(const struct gw_option *table, yaml_document_t *doc, int node_id,
                     const char *file, const char *key_path, const char *const *skip_keys,
                     void *config, struct gw_optstore **store, struct gw_diag *diag)
{
	if (!*store)
		*store = gw_optstore_new(NULL);
	size_t errors_before = diag->errors;
	struct binder b = {
	        .table = table,
	        .doc = doc,
	        .file = file,
	        .key_path = key_path,
	        .skip_keys = skip_keys,
	        .config = config,
	        .store = *store,
	        .diag = diag,
	        .option_count = count_options(table),
	};
	b.seen_at = gw_xcalloc(b.option_count + 1, sizeof(*b.seen_at));
	yaml_node_t *mapping = node_id && doc ? yaml_document_get_node(doc, node_id) : NULL;
	if (mapping && mapping->type != YAML_MAPPING_NODE) {
		gw_diag_error(diag, file, mark_line(mapping), mark_column(mapping),
		              "%s: expected a mapping of options, got %s", key_path,
		              node_kind_name(mapping));
	} else if (mapping) {
		for (yaml_node_pair_t *p = mapping->data.mapping.pairs.start;
		     p < mapping->data.mapping.pairs.top; p++)
			bind_pair(&b, p);
	}
	apply_missing(&b, mapping);
	free(b.seen_at);
	return diag->errors == errors_before;
}

/* ---- printing ---- */

struct unit_name {
	uint64_t factor;
	const char *suffix;
};

/* The largest unit that divides @p value exactly, so the text parses back to it. */
static void print_with_units(FILE *out, uint64_t value, const struct unit_name *units)
{
	for (const struct unit_name *u = units; u->suffix; u++) {
		if (value && value % u->factor == 0) {
			fprintf(out, "%" PRIu64 "%s", value / u->factor, u->suffix);
			return;
		}
	}
	fprintf(out, "%" PRIu64, value);
}

static void print_size(FILE *out, uint64_t bytes)
{
	static const struct unit_name units[] = {
	        {1ull << 40, "TiB"},   {1000000000000ull, "TB"}, {1ull << 30, "GiB"},
	        {1000000000ull, "GB"}, {1ull << 20, "MiB"},      {1000000ull, "MB"},
	        {1ull << 10, "KiB"},   {1000ull, "KB"},          {0, NULL},
	};
	print_with_units(out, bytes, units);
}

static void print_duration(FILE *out, uint64_t ms)
{
	static const struct unit_name units[] = {
	        {86400000ull, "d"}, {3600000ull, "h"}, {60000ull, "m"},
	        {1000ull, "s"},     {1ull, "ms"},      {0, NULL},
	};
	if (ms == 0) {
		fputs("0s", out);
		return;
	}
	print_with_units(out, ms, units);
}

static void print_list(FILE *out, const struct gw_str_list *list)
{
	fputc('[', out);
	for (size_t i = 0; i < list->count; i++)
		fprintf(out, "%s%s", i ? ", " : "", list->items[i]);
	fputc(']', out);
}

static void print_enum(FILE *out, const struct gw_option *opt, int index)
{
	int count = 0;
	while (opt->choices && opt->choices[count])
		count++;
	if (index >= 0 && index < count)
		fputs(opt->choices[index], out);
	else
		fprintf(out, "(invalid choice %d)", index);
}

static void print_value(FILE *out, const struct gw_option *opt, const void *config)
{
	const void *f = const_field(config, opt);
	switch (opt->type) {
	case GW_OPT_STRING:
	case GW_OPT_PATH: {
		const char *s = *(const char *const *)f;
		fputs(s ? s : "(unset)", out);
		break;
	}
	case GW_OPT_SECRET:
		/* Never the value, not even its length. */
		fputs(*(const char *const *)f ? "***" : "(unset)", out);
		break;
	case GW_OPT_INT: fprintf(out, "%" PRId64, *(const int64_t *)f); break;
	case GW_OPT_BOOL: fputs(*(const bool *)f ? "true" : "false", out); break;
	case GW_OPT_SIZE: print_size(out, *(const uint64_t *)f); break;
	case GW_OPT_DURATION: print_duration(out, *(const uint64_t *)f); break;
	case GW_OPT_ENUM: print_enum(out, opt, *(const int *)f); break;
	case GW_OPT_LIST: print_list(out, f); break;
	default: fputs("(unknown type)", out);
	}
}

void gw_options_print(const struct gw_option *table, const void *config, FILE *out,
                      const char *indent)
{
	for (size_t i = 0; table && table[i].name; i++) {
		fprintf(out, "%s%s: ", indent ? indent : "", table[i].name);
		print_value(out, &table[i], config);
		fputc('\n', out);
	}
}
