/*
 * one_call.c -- visitor mode as a lock: hb_write_now / hb_read_now cast,
 * visit and run in one call, waiting their turn if they must.
 *
 * A log of fixed-size records lives in one buffer.  First one thread
 * appends to it alone: the buffer is biased to that thread, and its visits
 * take no atomic read-modify-write.  Then three more threads join -- two
 * appending, one auditing the whole log -- and the first of them ends the
 * bias; from there on every visit takes its ticket in order.  At the end
 * every record is checked.
 *
 * Build and run: make demo (or build/release/examples/one_call).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <hyperbuf.h>

typedef struct {
  uint32_t writer; /* which thread appended it */
  uint32_t seq;    /* that thread's count */
  uint64_t check;  /* a function of the two */
} record;

static uint64_t record_check(uint32_t writer, uint32_t seq) {
  return ((uint64_t)writer << 32 | seq) * 0x9e3779b97f4a7c15u;
}

typedef struct {
  hb_buf *log;
  uint32_t id, count;
} appender;

static int append_record(hb_view *view, void *arg) {
  appender *a = arg;
  record r = {a->id, a->count, record_check(a->id, a->count)};
  return hb_view_append(view, &r);
}

static void *append_many(void *arg) {
  appender *a = arg;
  for (a->count = 0; a->count < 200000; a->count++) {
    int rc, result;
    rc = HB_WRITE_NOW(a->log, record, 0, append_record, a, &result);
    if (rc != HB_OK || result != HB_OK) {
      fprintf(stderr, "append: %s\n", hb_strerror(rc != HB_OK ? rc : result));
      exit(1);
    }
  }
  return NULL;
}

/* The auditor reads the whole log as a record array, under a read ticket:
 * no append can run meanwhile, so what it sees is a consistent prefix. */
typedef struct {
  size_t records, bad;
} audit;

static int audit_log(hb_view *view, void *arg) {
  audit *au = arg;
  size_t n;
  const record *r = HB_READ_ARRAY(view, record, &n);
  au->records = n;
  au->bad = 0;
  for (size_t i = 0; i < n; i++)
    if (r[i].check != record_check(r[i].writer, r[i].seq)) au->bad++;
  return 0;
}

static void *audit_often(void *arg) {
  hb_buf *log = arg;
  audit au = {0};
  for (int i = 0; i < 50; i++) {
    if (HB_READ_NOW(log, record, audit_log, &au, NULL) != HB_OK) exit(1);
    if (au.bad != 0) {
      fprintf(stderr, "audit: %zu bad records\n", au.bad);
      exit(1);
    }
  }
  printf("auditor: 50 audits, the last saw %zu records, none bad\n",
         au.records);
  return NULL;
}

static double seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(void) {
  hb_buf *log = hb_new(0);
  if (log == NULL) return 1;

  /* One thread alone: the buffer is biased to it. */
  appender first = {log, 0, 0};
  double t0 = seconds();
  append_many(&first);
  double alone = seconds() - t0;
  printf("alone:    200000 appends in %.1f ms (%.1f ns each)\n",
         alone * 1e3, alone * 1e9 / 200000);

  /* Three more threads: two appenders and an auditor. */
  appender more[2] = {{log, 1, 0}, {log, 2, 0}};
  pthread_t t[3];
  t0 = seconds();
  pthread_create(&t[0], NULL, append_many, &more[0]);
  pthread_create(&t[1], NULL, append_many, &more[1]);
  pthread_create(&t[2], NULL, audit_often, log);
  for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
  double shared = seconds() - t0;
  printf("shared:   400000 appends by 2 threads beside the auditor in %.1f ms\n",
         shared * 1e3);

  /* Every record is there once, in each writer's order. */
  audit au = {0};
  if (HB_READ_NOW(log, record, audit_log, &au, NULL) != HB_OK) return 1;
  const record *r = (const record *)hb_data(log);
  uint32_t next[3] = {0, 0, 0};
  size_t out_of_order = 0;
  for (size_t i = 0; i < au.records; i++) {
    if (r[i].writer > 2 || r[i].seq != next[r[i].writer]) out_of_order++;
    if (r[i].writer <= 2) next[r[i].writer] = r[i].seq + 1;
  }
  hb_stats st;
  hb_stats_get(log, &st);
  printf("log:      %zu records, %zu bad, %zu out of order; %llu visits run, "
         "%llu growths\n",
         au.records, au.bad, out_of_order,
         (unsigned long long)st.visits_run, (unsigned long long)st.growths);
  int ok = au.records == 600000 && au.bad == 0 && out_of_order == 0;
  printf("%s\n", ok ? "every record arrived, intact and in order"
                    : "RECORDS LOST OR DAMAGED");
  hb_free(log);
  return ok ? 0 : 1;
}
