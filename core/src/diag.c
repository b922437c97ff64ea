/* Collected configuration diagnostics, printed compiler-style. */
#include "diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "util.h"

void gw_diag_add(struct gw_diag *d, enum gw_diag_severity sev, const char *file, unsigned line,
                 unsigned column, const char *fmt, ...)
{
	if (d->count == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 8;
		d->entries = gw_xrealloc(d->entries, d->cap * sizeof(*d->entries));
	}
	struct gw_diag_entry *e = &d->entries[d->count++];
	e->severity = sev;
	e->file = file ? gw_xstrdup(file) : NULL;
	e->line = line;
	e->column = line ? column : 0; /* a column without a line means nothing */
	va_list ap;
	va_start(ap, fmt);
	e->message = gw_xvasprintf(fmt, ap);
	va_end(ap);
	if (sev == GW_DIAG_ERROR)
		d->errors++;
}

char *gw_diag_format(const struct gw_diag_entry *e)
{
	struct gw_buf b = {0};
	if (e->file)
		gw_buf_printf(&b, "%s:", e->file);
	if (e->line)
		gw_buf_printf(&b, "%u:", e->line);
	if (e->line && e->column)
		gw_buf_printf(&b, "%u:", e->column);
	if (b.len)
		gw_buf_puts(&b, " ");
	gw_buf_puts(&b, e->severity == GW_DIAG_ERROR ? "error: " : "warning: ");
	gw_buf_puts(&b, e->message);
	return b.data;
}

void gw_diag_print(const struct gw_diag *d)
{
	for (size_t i = 0; i < d->count; i++) {
		char *line = gw_diag_format(&d->entries[i]);
		fprintf(stderr, "%s\n", line);
		free(line);
	}
}

void gw_diag_free(struct gw_diag *d)
{
	for (size_t i = 0; i < d->count; i++) {
		free(d->entries[i].file);
		free(d->entries[i].message);
	}
	free(d->entries);
	d->entries = NULL;
	d->count = d->cap = d->errors = 0;
}
