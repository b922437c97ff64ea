/* Early write-back (maildir_writeback.h). */
#define _GNU_SOURCE /* syncfs, pthread_setname_np */
#include "maildir_writeback.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

struct md_writeback {
	int fd;
	uint64_t every;
	uint64_t written; /* since the last request */
	bool requested, quit;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
};

static void *writeback_main(void *arg)
{
	struct md_writeback *w = arg;
	pthread_setname_np(pthread_self(), "godwit-wb");
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->requested && !w->quit)
			pthread_cond_wait(&w->wake, &w->lock);
		if (w->quit)
			break;
		w->requested = false;
		pthread_mutex_unlock(&w->lock);
		/* Errors do not matter here: flush syncs again and reports them. */
		(void)syncfs(w->fd);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

struct md_writeback *md_writeback_start(int fd, uint64_t every_bytes)
{
	struct md_writeback *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->fd = fd;
	w->every = every_bytes;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->wake, NULL);
	if (pthread_create(&w->thread, NULL, writeback_main, w) != 0) {
		pthread_cond_destroy(&w->wake);
		pthread_mutex_destroy(&w->lock);
		free(w);
		return NULL;
	}
	return w;
}

void md_writeback_note(struct md_writeback *w, uint64_t bytes)
{
	if (!w)
		return;
	w->written += bytes; /* only the sink's thread counts */
	if (w->written < w->every)
		return;
	w->written = 0;
	pthread_mutex_lock(&w->lock);
	w->requested = true; /* a sync in progress picks this up when it is done */
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
}

void md_writeback_stop(struct md_writeback *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->quit = true;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->wake);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
