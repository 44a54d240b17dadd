/* Free space on the data directory's file system (issue 13): SMTP MAIL and IMAP APPEND
 * ask before they take a message, so a filling disk refuses new mail with a temporary
 * reply while what is already stored keeps working. One statvfs a second at most,
 * shared by every thread through atomics: a refusal storm costs no system calls. */
#include "store/store_private.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "core/log.h"
#include "core/banned.h"

/* How long one measurement is trusted. */
#define STORE_SPACE_TTL_MS 1000

static int64_t store_space_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Measure now (the caller won the right to). */
static int store_space_measure(struct store *store)
{
	struct statvfs st;
	if (statvfs(store->data_dir, &st) < 0) {
		if (!atomic_exchange(&store->space_failing, true))
			log_error("store: event=statvfs path=%s error=%s (free space unknown)",
			          store->data_dir, strerror(errno));
		atomic_store(&store->space_avail, UINT64_MAX);
		atomic_store(&store->space_inodes, UINT64_MAX);
		return -1;
	}
	atomic_store(&store->space_failing, false);
	uint64_t unit = st.f_frsize != 0 ? st.f_frsize : st.f_bsize;
	uint64_t avail = (uint64_t)st.f_bavail;
	avail = unit != 0 && avail > UINT64_MAX / unit ? UINT64_MAX : avail * unit;
	atomic_store(&store->space_avail, avail);
	/* tmpfs with nr_inodes=0, btrfs and others report no inode counts */
	atomic_store(&store->space_inodes, st.f_files == 0 ? UINT64_MAX : (uint64_t)st.f_favail);
	return 0;
}

int store_space_free(struct store *store, uint64_t *avail_r, uint64_t *inodes_r)
{
	int64_t now = store_space_now_ms();
	int64_t at = atomic_load(&store->space_at);
	int ret = 0;
	/* One thread refreshes; the others use the last figures meanwhile. */
	if ((at == 0 || now - at >= STORE_SPACE_TTL_MS) &&
	    atomic_compare_exchange_strong(&store->space_at, &at, now == 0 ? 1 : now))
		ret = store_space_measure(store);
	else if (atomic_load(&store->space_failing))
		ret = -1;
	*avail_r = atomic_load(&store->space_avail);
	*inodes_r = atomic_load(&store->space_inodes);
	return ret;
}

bool store_space_low(struct store *store, uint64_t min_free, uint64_t size)
{
	uint64_t avail, inodes;
	if (min_free == 0 || store_space_free(store, &avail, &inodes) < 0)
		return false;
	bool low = avail < min_free || inodes < STORE_SPACE_MIN_INODES;
	if (atomic_exchange(&store->space_low, low) != low) {
		if (low)
			log_warn("store: event=disk-low path=%s free=%" PRIu64 " inodes=%" PRIu64
			         " min_free=%" PRIu64 " (new mail is refused until space is freed)",
			         store->data_dir, avail, inodes, min_free);
		else
			log_info("store: event=disk-ok path=%s free=%" PRIu64 " min_free=%" PRIu64,
			         store->data_dir, avail, min_free);
	}
	return low || avail - min_free < size;
}
