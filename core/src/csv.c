/* The mailbox list: an RFC 4180 reader that keeps going after a bad row.
 * Syntax errors point at the offending character; row-level problems point at
 * the line where the row starts, so the user can fix every row in one pass.
 * Only an unterminated quote stops the parse: everything after it would be
 * one giant field, and guessing where it should have ended would be wrong. */
#include "csv.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "secret.h"
#include "util.h"

/* ---- the reader: bytes -> records, with line:column tracking ---- */

struct csv_reader {
	const char *name;
	const char *data;
	size_t len;
	size_t pos;
	unsigned line;
	unsigned column; /* in characters, not bytes */
	struct gw_diag *diag;
};

struct csv_field {
	char *value;
	size_t len;
	bool quoted;
};

struct csv_record {
	struct csv_field *fields;
	size_t count;
	unsigned line; /* where the record starts */
};

enum csv_result {
	CSV_RECORD,  /* a syntactically valid record */
	CSV_BLANK,   /* an empty line, ignored */
	CSV_BAD_ROW, /* reported and consumed; reading goes on */
	CSV_STOP,    /* reported; nothing after it can be trusted */
	CSV_END,
};

static bool at_end(const struct csv_reader *r)
{
	return r->pos >= r->len;
}

static char peek(const struct csv_reader *r)
{
	return r->data[r->pos];
}

static void advance(struct csv_reader *r)
{
	unsigned char c = (unsigned char)r->data[r->pos++];
	if (c == '\n') {
		r->line++;
		r->column = 1;
	} else if ((c & 0xC0) != 0x80) {
		/* UTF-8 continuation bytes belong to the character already counted. */
		r->column++;
	}
}

/* LF or CRLF. A lone CR is data: RFC 4180 lines end in CRLF, Unix ones in LF.
 */
static bool at_line_end(const struct csv_reader *r)
{
	if (at_end(r))
		return false;
	if (peek(r) == '\n')
		return true;
	return peek(r) == '\r' && r->pos + 1 < r->len && r->data[r->pos + 1] == '\n';
}

static void consume_line_end(struct csv_reader *r)
{
	if (peek(r) == '\r')
		advance(r);
	advance(r);
}

static void skip_rest_of_line(struct csv_reader *r)
{
	while (!at_end(r) && !at_line_end(r))
		advance(r);
	if (!at_end(r))
		consume_line_end(r);
}

static void free_record(struct csv_record *rec)
{
	for (size_t i = 0; i < rec->count; i++)
		free(rec->fields[i].value);
	free(rec->fields);
	rec->fields = NULL;
	rec->count = 0;
}

static void push_field(struct csv_record *rec, struct gw_buf *value, bool quoted)
{
	rec->fields = gw_xrealloc(rec->fields, (rec->count + 1) * sizeof(*rec->fields));
	struct csv_field *f = &rec->fields[rec->count++];
	f->len = value->len;
	f->value = value->data != NULL ? value->data : gw_xstrdup("");
	f->quoted = quoted;
	*value = (struct gw_buf){0};
}

static enum csv_result read_quoted(struct csv_reader *r, struct gw_buf *value)
{
	unsigned open_line = r->line, open_column = r->column;
	advance(r); /* the opening quote */
	for (;;) {
		if (at_end(r)) {
			gw_diag_error(r->diag, r->name, open_line, open_column,
			              "quoted field is never closed (the quote opened here has no "
			              "closing quote)");
			return CSV_STOP;
		}
		char c = peek(r);
		if (c == '"') {
			advance(r);
			if (at_end(r) || peek(r) != '"')
				break;
		}
		gw_buf_append(value, &c, 1);
		advance(r);
	}
	if (!at_end(r) && peek(r) != ',' && !at_line_end(r)) {
		gw_diag_error(r->diag, r->name, r->line, r->column,
		              "unexpected character after the closing quote of a field");
		skip_rest_of_line(r);
		return CSV_BAD_ROW;
	}
	return CSV_RECORD;
}

static enum csv_result read_unquoted(struct csv_reader *r, struct gw_buf *value)
{
	while (!at_end(r) && peek(r) != ',' && !at_line_end(r)) {
		char c = peek(r);
		if (c == '"') {
			gw_diag_error(r->diag, r->name, r->line, r->column,
			              "stray '\"' in an unquoted field (quote the whole field and "
			              "double the quote)");
			skip_rest_of_line(r);
			return CSV_BAD_ROW;
		}
		gw_buf_append(value, &c, 1);
		advance(r);
	}
	return CSV_RECORD;
}

static enum csv_result read_record(struct csv_reader *r, struct csv_record *rec)
{
	*rec = (struct csv_record){.line = r->line};
	if (at_end(r))
		return CSV_END;
	for (;;) {
		struct gw_buf value = {0};
		bool quoted = !at_end(r) && peek(r) == '"';
		enum csv_result res = quoted ? read_quoted(r, &value) : read_unquoted(r, &value);
		if (res != CSV_RECORD) {
			gw_buf_free(&value);
			free_record(rec);
			return res;
		}
		push_field(rec, &value, quoted);
		if (at_end(r))
			break;
		if (peek(r) == ',') {
			advance(r);
			continue;
		}
		consume_line_end(r);
		break;
	}
	if (rec->count == 1 && rec->fields[0].len == 0 && !rec->fields[0].quoted) {
		free_record(rec);
		return CSV_BLANK;
	}
	return CSV_RECORD;
}

/* Next record that is not a blank line. */
static enum csv_result next_record(struct csv_reader *r, struct csv_record *rec)
{
	enum csv_result res;
	do
		res = read_record(r, rec);
	while (res == CSV_BLANK);
	return res;
}

/* ---- validation ---- */

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF, no
 * NUL. */
static bool valid_utf8(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < len) {
		unsigned char c = p[i];
		size_t extra;
		unsigned min;
		unsigned cp;
		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xE0) == 0xC0) {
			extra = 1, min = 0x80, cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			extra = 2, min = 0x800, cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			extra = 3, min = 0x10000, cp = c & 0x07;
		} else {
			return false;
		}
		if (i + extra >= len)
			return false;
		for (size_t k = 1; k <= extra; k++) {
			if ((p[i + k] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += extra + 1;
	}
	return true;
}

/* NULL if @p email is usable, else why not (static text). */
static const char *email_problem(const char *email)
{
	if (*email == '\0')
		return "is empty";
	const char *at = strchr(email, '@');
	for (const char *p = email; *p != '\0'; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == '\v' || *p == '\f')
			return "contains whitespace";
	}
	if (at == NULL || strchr(at + 1, '@') != NULL)
		return "must contain exactly one '@'";
	if (at == email || at[1] == '\0')
		return "needs a name before and a domain after the '@'";
	return NULL;
}

static bool report_bad_email(struct gw_diag *diag, const char *file, unsigned line, unsigned column,
                             const char *email)
{
	const char *problem = email_problem(email);
	if (problem == NULL)
		return false;
	if (*email == '\0')
		gw_diag_error(diag, file, line, column, "EmailAddress is empty");
	else
		gw_diag_error(diag, file, line, column, "EmailAddress '%s' %s", email, problem);
	return true;
}

/* ---- the list ---- */

static void wipe_and_free(char *secret)
{
	if (secret != NULL) {
		explicit_bzero(secret, strlen(secret));
		free(secret);
	}
}

static void free_entry(struct gw_mailbox_entry *e)
{
	free((char *)e->mbx.email);
	free((char *)e->mbx.username);
	wipe_and_free((char *)e->mbx.password);
	for (size_t i = 0; i < e->mbx.extra_count; i++)
		free((char *)e->mbx.extra_values[i]);
	free((void *)e->mbx.extra_values);
}

void gw_mailbox_list_free(struct gw_mailbox_list *list)
{
	for (size_t i = 0; i < list->count; i++)
		free_entry(&list->items[i]);
	free(list->items);
	for (size_t i = 0; i < list->extra_count; i++)
		free(list->extra_names[i]);
	free(list->extra_names);
	*list = (struct gw_mailbox_list){0};
}

/* Takes ownership of every string and of @p extra_values. */
static void append_entry(struct gw_mailbox_list *list, char *email, char *username, char *password,
                         char **extra_values, size_t extra_count, unsigned line)
{
	/* The list has no capacity field: it doubles whenever count reaches a power of two. */
	size_t n = list->count;
	if (n == 0 || (n >= 8 && (n & (n - 1)) == 0))
		list->items = gw_xrealloc(list->items, (n < 8 ? 8 : n * 2) * sizeof(*list->items));
	struct gw_mailbox_entry *e = &list->items[list->count++];
	*e = (struct gw_mailbox_entry){
	        .mbx =
	                {
	                        .struct_size = sizeof(struct gw_mailbox),
	                        .email = email,
	                        .username = username,
	                        .password = password,
	                        .extra_count = extra_count,
	                        .extra_names = (const char *const *)list->extra_names,
	                        .extra_values = (const char *const *)extra_values,
	                },
	        .line = line,
	};
}

/* Case-insensitive (ASCII) set of emails -> index in the list, so that a list
 * of many thousand users is checked for duplicates in linear time. */
struct email_index {
	size_t *slots; /* list index + 1; 0 = empty */
	size_t cap;    /* power of two */
	size_t used;
};

static size_t email_hash(const char *email)
{
	size_t h = 1469598103934665603u; /* FNV-1a */
	for (const char *p = email; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		h = (h ^ c) * 1099511628211u;
	}
	return h;
}

static void index_grow(struct email_index *ix, const struct gw_mailbox_list *list)
{
	size_t cap = ix->cap ? ix->cap * 2 : 64;
	size_t *slots = gw_xcalloc(cap, sizeof(*slots));
	for (size_t i = 0; i < ix->cap; i++) {
		if (ix->slots[i] == 0)
			continue;
		size_t h = email_hash(list->items[ix->slots[i] - 1].mbx.email) & (cap - 1);
		while (slots[h] != 0)
			h = (h + 1) & (cap - 1);
		slots[h] = ix->slots[i];
	}
	free(ix->slots);
	ix->slots = slots;
	ix->cap = cap;
}

/* The entry already listed with @p email, or NULL. */
static const struct gw_mailbox_entry *
index_find(const struct email_index *ix, const struct gw_mailbox_list *list, const char *email)
{
	if (ix->cap == 0)
		return NULL;
	for (size_t h = email_hash(email) & (ix->cap - 1); ix->slots[h] != 0;
	     h = (h + 1) & (ix->cap - 1)) {
		const struct gw_mailbox_entry *e = &list->items[ix->slots[h] - 1];
		if (strcasecmp(e->mbx.email, email) == 0)
			return e;
	}
	return NULL;
}

static void index_add(struct email_index *ix, const struct gw_mailbox_list *list, size_t item)
{
	if ((ix->used + 1) * 2 > ix->cap)
		index_grow(ix, list);
	size_t h = email_hash(list->items[item].mbx.email) & (ix->cap - 1);
	while (ix->slots[h] != 0)
		h = (h + 1) & (ix->cap - 1);
	ix->slots[h] = item + 1;
	ix->used++;
}

static const struct gw_mailbox_entry *find_linear(const struct gw_mailbox_list *list,
                                                  const char *email)
{
	for (size_t i = 0; i < list->count; i++) {
		if (strcasecmp(list->items[i].mbx.email, email) == 0)
			return &list->items[i];
	}
	return NULL;
}

static void report_duplicate(struct gw_diag *diag, const char *file, unsigned line, unsigned column,
                             const char *email, const struct gw_mailbox_entry *first)
{
	if (first->line > 0)
		gw_diag_error(diag, file, line, column,
		              "duplicate EmailAddress '%s' (first listed on line %u)", email,
		              first->line);
	else
		gw_diag_error(diag, file, line, column, "duplicate EmailAddress '%s'", email);
}

/* A password as written -> its value (references resolved, "$${" unescaped, the
 * value registered for redaction), or NULL when none is given. */
static bool resolve_password(const char *written, char **value, char **error)
{
	*value = NULL;
	*error = NULL;
	if (written == NULL || *written == '\0')
		return true;
	return gw_secret_resolve(written, value, error);
}

bool gw_mailbox_list_add(struct gw_mailbox_list *list, const char *email, const char *username,
                         const char *password, const char *file, unsigned line,
                         struct gw_diag *diag)
{
	if (email == NULL)
		email = "";
	if (report_bad_email(diag, file, line, 0, email))
		return false;
	const struct gw_mailbox_entry *first = find_linear(list, email);
	if (first != NULL) {
		report_duplicate(diag, file, line, 0, email, first);
		return false;
	}
	char *value, *error;
	if (!resolve_password(password, &value, &error)) {
		gw_diag_error(diag, file, line, 0, "password of %s: %s", email, error);
		free(error);
		return false;
	}
	append_entry(list, gw_xstrdup(email), gw_xstrdup(username != NULL ? username : ""), value,
	             NULL, 0, line);
	return true;
}

/* ---- header ---- */

enum { COL_NONE = -1 };

struct csv_columns {
	long email, username, password; /* field index or COL_NONE */
	size_t count;                   /* fields per row */
	size_t *extra;                  /* field index of each extra column */
};

/* Header names are compared without the blanks people type after commas. */
static char *trimmed(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	return gw_xstrndup(s, n);
}

static bool claim_column(long *slot, long index, const char *name, struct csv_reader *r,
                         unsigned line)
{
	if (*slot != COL_NONE) {
		gw_diag_error(r->diag, r->name, line, 1, "column %s appears twice in the header",
		              name);
		return false;
	}
	*slot = index;
	return true;
}

static void report_missing_email(struct csv_reader *r, const struct csv_record *header)
{
	struct gw_buf found = {0};
	for (size_t i = 0; i < header->count; i++) {
		if (i > 0)
			gw_buf_puts(&found, ", ");
		gw_buf_puts(&found, header->fields[i].value);
	}
	gw_diag_error(r->diag, r->name, header->line, 1,
	              "the header has no EmailAddress column (found: %s); the first line must "
	              "name the columns, e.g. EmailAddress,UserName,Password",
	              found.data != NULL ? found.data : "");
	gw_buf_free(&found);
}

static bool read_header(struct csv_reader *r, struct csv_columns *cols,
                        struct gw_mailbox_list *list)
{
	struct csv_record header;
	enum csv_result res = next_record(r, &header);
	if (res == CSV_END) {
		gw_diag_error(r->diag, r->name, 0, 0,
		              "the file is empty (expected the header "
		              "EmailAddress,UserName,Password)");
		return false;
	}
	if (res != CSV_RECORD)
		return false; /* already reported; without a header no row means anything */
	*cols = (struct csv_columns){.email = COL_NONE,
	                             .username = COL_NONE,
	                             .password = COL_NONE,
	                             .count = header.count};
	bool ok = true;
	for (size_t i = 0; ok && i < header.count; i++) {
		if (!valid_utf8(header.fields[i].value, header.fields[i].len)) {
			gw_diag_error(r->diag, r->name, header.line, 1,
			              "column %zu of the header is not valid UTF-8", i + 1);
			ok = false;
			break;
		}
		char *name = trimmed(header.fields[i].value);
		if (*name == '\0') {
			gw_diag_error(r->diag, r->name, header.line, 1,
			              "column %zu of the header has no name", i + 1);
			ok = false;
		} else if (strcasecmp(name, "EmailAddress") == 0) {
			ok = claim_column(&cols->email, (long)i, "EmailAddress", r, header.line);
		} else if (strcasecmp(name, "UserName") == 0) {
			ok = claim_column(&cols->username, (long)i, "UserName", r, header.line);
		} else if (strcasecmp(name, "Password") == 0) {
			ok = claim_column(&cols->password, (long)i, "Password", r, header.line);
		} else {
			for (size_t k = 0; ok && k < list->extra_count; k++) {
				if (strcasecmp(list->extra_names[k], name) == 0) {
					gw_diag_error(r->diag, r->name, header.line, 1,
					              "column %s appears twice in the header",
					              name);
					ok = false;
				}
			}
			if (ok) {
				list->extra_names = gw_xrealloc(list->extra_names,
				                                (list->extra_count + 1) *
				                                        sizeof(*list->extra_names));
				cols->extra = gw_xrealloc(cols->extra, (list->extra_count +
				                                        1) * sizeof(*cols->extra));
				cols->extra[list->extra_count] = i;
				list->extra_names[list->extra_count++] = name;
				name = NULL;
			}
		}
		free(name);
	}
	if (ok && cols->email == COL_NONE) {
		report_missing_email(r, &header);
		ok = false;
	}
	free_record(&header);
	return ok;
}

/* ---- rows ---- */

static const char *column_name(const struct csv_columns *cols, const struct gw_mailbox_list *list,
                               size_t field)
{
	if ((long)field == cols->email)
		return "EmailAddress";
	if ((long)field == cols->username)
		return "UserName";
	if ((long)field == cols->password)
		return "Password";
	for (size_t k = 0; k < list->extra_count; k++) {
		if (cols->extra[k] == field)
			return list->extra_names[k];
	}
	return "?";
}

static bool row_is_valid(struct csv_reader *r, const struct csv_columns *cols,
                         const struct gw_mailbox_list *list, const struct csv_record *row)
{
	if (row->count != cols->count) {
		gw_diag_error(r->diag, r->name, row->line, 1,
		              "row has %zu fields, the header has %zu", row->count, cols->count);
		return false;
	}
	for (size_t i = 0; i < row->count; i++) {
		if (!valid_utf8(row->fields[i].value, row->fields[i].len)) {
			gw_diag_error(r->diag, r->name, row->line, 1, "%s is not valid UTF-8",
			              column_name(cols, list, i));
			return false;
		}
	}
	return !report_bad_email(r->diag, r->name, row->line, 1, row->fields[cols->email].value);
}

/* Moves the field's value out of the record. */
static char *take_field(struct csv_record *row, long index)
{
	if (index == COL_NONE)
		return NULL;
	char *value = row->fields[index].value;
	row->fields[index].value = NULL;
	return value;
}

static void add_row(struct csv_reader *r, const struct csv_columns *cols,
                    struct gw_mailbox_list *list, struct email_index *ix, struct csv_record *row)
{
	if (!row_is_valid(r, cols, list, row))
		return;
	const char *email = row->fields[cols->email].value;
	const struct gw_mailbox_entry *first = index_find(ix, list, email);
	if (first != NULL) {
		report_duplicate(r->diag, r->name, row->line, 1, email, first);
		return;
	}
	char *password = NULL, *error = NULL;
	const char *written = cols->password != COL_NONE ? row->fields[cols->password].value : NULL;
	if (!resolve_password(written, &password, &error)) {
		gw_diag_error(r->diag, r->name, row->line, 1, "Password: %s", error);
		free(error);
		return;
	}
	char **extras = NULL;
	if (list->extra_count > 0) {
		extras = gw_xmalloc(list->extra_count * sizeof(*extras));
		for (size_t k = 0; k < list->extra_count; k++)
			extras[k] = take_field(row, (long)cols->extra[k]);
	}
	char *username = take_field(row, cols->username);
	append_entry(list, take_field(row, cols->email), username ? username : gw_xstrdup(""),
	             password, extras, list->extra_count, row->line);
	index_add(ix, list, list->count - 1);
}

static void skip_bom(struct csv_reader *r)
{
	if (r->len >= 3 && memcmp(r->data, "\xEF\xBB\xBF", 3) == 0)
		r->pos = 3;
}

bool gw_csv_parse(const char *name, const char *data, size_t len, struct gw_mailbox_list *out,
                  struct gw_diag *diag)
{
	*out = (struct gw_mailbox_list){0};
	struct csv_reader r = {
	        .name = name, .data = data, .len = len, .line = 1, .column = 1, .diag = diag};
	skip_bom(&r);
	struct csv_columns cols = {0};
	if (!read_header(&r, &cols, out)) {
		free(cols.extra);
		gw_mailbox_list_free(out);
		return false;
	}
	struct email_index ix = {0};
	struct csv_record row;
	enum csv_result res;
	while ((res = next_record(&r, &row)) != CSV_END && res != CSV_STOP) {
		if (res == CSV_RECORD)
			add_row(&r, &cols, out, &ix, &row);
		free_record(&row);
	}
	free(ix.slots);
	free(cols.extra);
	return true;
}

bool gw_csv_load(const char *path, struct gw_mailbox_list *out, struct gw_diag *diag)
{
	*out = (struct gw_mailbox_list){0};
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		gw_diag_error(diag, path, 0, 0, "cannot open the mailbox list: %s",
		              strerror(errno));
		return false;
	}
	struct gw_buf content = {0};
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		gw_buf_append(&content, chunk, n);
	bool failed = ferror(f) != 0;
	int saved = errno;
	fclose(f);
	if (failed) {
		gw_diag_error(diag, path, 0, 0, "cannot read the mailbox list: %s",
		              strerror(saved));
		gw_buf_free(&content);
		return false;
	}
	bool ok = gw_csv_parse(path, content.data != NULL ? content.data : "", content.len, out,
	                       diag);
	gw_buf_free(&content);
	return ok;
}
