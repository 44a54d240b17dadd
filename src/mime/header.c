/* Incremental header-section scanner (see header.h). A byte-level state machine, so that a
 * chunk may end anywhere (even between CR and LF); only the three kept field bodies are
 * stored, each capped at max_field, and everything else is counted and skipped
 * (RFC 5322 §2.2 fields, §2.2.3 unfolding, §3.6 obs-optional "Name : value"). */
#include "mime/header.h"

#include <string.h>
#include <strings.h>

#include "core/banned.h"

/* Long enough for every name we look for; longer names cannot match and are not kept. */
#define HEADER_NAME_MAX 32

enum header_state {
	HEADER_STATE_LINE_START, /* at the first octet of a line */
	HEADER_STATE_NAME,       /* inside a field name, before the colon */
	HEADER_STATE_VALUE,      /* inside a field body (or a line we skip) */
	HEADER_STATE_DONE,       /* the empty line was seen */
};

enum header_slot_id {
	HEADER_SLOT_FROM,
	HEADER_SLOT_SUBJECT,
	HEADER_SLOT_MESSAGE_ID,
	HEADER_SLOT_COUNT,
};

static const char *const header_slot_names[HEADER_SLOT_COUNT] = {
    [HEADER_SLOT_FROM] = "from",
    [HEADER_SLOT_SUBJECT] = "subject",
    [HEADER_SLOT_MESSAGE_ID] = "message-id",
};

struct header_slot {
	char *data; /* max_field + 1 octets in the arena, allocated on first occurrence */
	size_t len;
	bool seen;
	bool truncated;
};

struct header_scanner {
	struct arena *arena;
	size_t max_field, max_lines;
	enum header_state state;
	bool cr; /* the previous octet was a CR not yet resolved */
	char name[HEADER_NAME_MAX];
	size_t name_len;
	bool name_long;          /* the name overflowed name[] and matches nothing */
	struct header_slot *cur; /* slot receiving the current field's body, or NULL */
	struct header_slot slots[HEADER_SLOT_COUNT];
	size_t lines;
	bool too_many;
};

struct header_scanner *header_scanner_new(struct arena *arena, size_t max_field, size_t max_lines)
{
	struct header_scanner *sc = arena_alloc(arena, sizeof(*sc));
	memset(sc, 0, sizeof(*sc));
	sc->arena = arena;
	sc->max_field = max_field;
	sc->max_lines = max_lines;
	sc->state = HEADER_STATE_LINE_START;
	return sc;
}

static bool header_is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* Append one body octet to the current slot: leading whitespace is dropped, the cap is
 * enforced, and octets that cannot live in a C string or a one-line index entry become SP. */
static void header_slot_put(struct header_scanner *sc, unsigned char c)
{
	struct header_slot *slot = sc->cur;
	if (slot->len == 0 && header_is_wsp(c))
		return;
	if (slot->len >= sc->max_field) {
		slot->truncated = true;
		return;
	}
	if (c == '\0' || c == '\r')
		c = ' ';
	slot->data[slot->len++] = (char)c;
}

/* The colon ended the field name: pick the slot if this is a first occurrence. */
static void header_name_done(struct header_scanner *sc)
{
	size_t n = sc->name_len;
	sc->cur = NULL;
	if (sc->name_long)
		return;
	while (n > 0 && header_is_wsp((unsigned char)sc->name[n - 1]))
		n--;
	for (int i = 0; i < HEADER_SLOT_COUNT; i++) {
		const char *want = header_slot_names[i];
		if (strlen(want) != n || strncasecmp(sc->name, want, n) != 0)
			continue;
		struct header_slot *slot = &sc->slots[i];
		if (!slot->seen) {
			slot->seen = true;
			slot->data = arena_alloc(sc->arena, sc->max_field + 1);
			sc->cur = slot;
		}
		return;
	}
}

/* A line that is neither empty nor a continuation starts a new field. */
static void header_field_start(struct header_scanner *sc, unsigned char c)
{
	sc->cur = NULL;
	if (sc->lines < sc->max_lines)
		sc->lines++;
	else
		sc->too_many = true;
	sc->name_len = 0;
	sc->name_long = false;
	sc->state = HEADER_STATE_NAME;
	sc->name[sc->name_len++] = (char)c;
}

/* One octet, after CR LF has been folded into LF (a bare CR arrives here as itself). */
static void header_octet(struct header_scanner *sc, unsigned char c)
{
	switch (sc->state) {
	case HEADER_STATE_LINE_START:
		if (c == '\n') {
			sc->state = HEADER_STATE_DONE;
		} else if (header_is_wsp(c)) {
			/* RFC 5322 §2.2.3: CRLF WSP unfolds to the WSP. */
			sc->state = HEADER_STATE_VALUE;
			if (sc->cur != NULL)
				header_slot_put(sc, c);
		} else {
			header_field_start(sc, c);
		}
		break;
	case HEADER_STATE_NAME:
		if (c == ':') {
			header_name_done(sc);
			sc->state = HEADER_STATE_VALUE;
		} else if (c == '\n') {
			/* A line without a colon: not a field we can use; skip it. */
			sc->state = HEADER_STATE_LINE_START;
		} else if (sc->name_len < HEADER_NAME_MAX) {
			sc->name[sc->name_len++] = (char)c;
		} else {
			sc->name_long = true;
		}
		break;
	case HEADER_STATE_VALUE:
		if (c == '\n')
			sc->state = HEADER_STATE_LINE_START;
		else if (sc->cur != NULL)
			header_slot_put(sc, c);
		break;
	case HEADER_STATE_DONE:
		break;
	}
}

/* In a body octet run that nobody keeps (or whose slot is full), skip to the next CR/LF. */
static size_t header_skip_run(struct header_scanner *sc, const unsigned char *data, size_t len)
{
	if (sc->state != HEADER_STATE_VALUE || sc->cr)
		return 0;
	if (sc->cur != NULL && sc->cur->len < sc->max_field)
		return 0;
	size_t i = 0;
	while (i < len && data[i] != '\n' && data[i] != '\r')
		i++;
	if (i > 0 && sc->cur != NULL)
		sc->cur->truncated = true;
	return i;
}

int header_scanner_feed(struct header_scanner *sc, const unsigned char *data, size_t len)
{
	size_t i = 0;
	while (i < len && sc->state != HEADER_STATE_DONE) {
		size_t skip = header_skip_run(sc, data + i, len - i);
		if (skip > 0) {
			i += skip;
			continue;
		}
		unsigned char c = data[i++];
		if (sc->cr) {
			sc->cr = false;
			if (c == '\n') {
				header_octet(sc, '\n');
				continue;
			}
			header_octet(sc, '\r'); /* a bare CR */
			if (sc->state == HEADER_STATE_DONE)
				break;
		}
		if (c == '\r')
			sc->cr = true;
		else
			header_octet(sc, c);
	}
	return sc->state == HEADER_STATE_DONE ? 1 : 0;
}

/* Length of data[0..len) without a UTF-8 sequence cut short at its end by truncation. */
static size_t header_utf8_trim(const unsigned char *data, size_t len)
{
	for (size_t back = 1; back <= 4 && back <= len; back++) {
		unsigned char c = data[len - back];
		if (c < 0x80)
			return len;
		if (c < 0xC0)
			continue; /* continuation octet: keep looking for the lead */
		size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
		return need > back ? len - back : len;
	}
	return len;
}

static char *header_slot_string(struct header_scanner *sc, const struct header_slot *slot)
{
	if (!slot->seen)
		return NULL;
	size_t n = slot->len;
	if (slot->truncated)
		n = header_utf8_trim((const unsigned char *)slot->data, n);
	while (n > 0 && header_is_wsp((unsigned char)slot->data[n - 1]))
		n--;
	return arena_strndup(sc->arena, n > 0 ? slot->data : "", n);
}

void header_scanner_result(struct header_scanner *sc, struct header_summary *summary_r)
{
	memset(summary_r, 0, sizeof(*summary_r));
	summary_r->from = header_slot_string(sc, &sc->slots[HEADER_SLOT_FROM]);
	summary_r->subject = header_slot_string(sc, &sc->slots[HEADER_SLOT_SUBJECT]);
	summary_r->message_id = header_slot_string(sc, &sc->slots[HEADER_SLOT_MESSAGE_ID]);
	summary_r->lines = sc->lines;
	summary_r->complete = sc->state == HEADER_STATE_DONE;
	summary_r->too_many = sc->too_many;
}
