/* The delivery reference: a C libcurl multi client POSTing the same small JSON body to one URL
 * with N transfers in flight, reusing connections, as fast as it can. Prints requests/s.
 *   cc -O2 -o curl-multi curl-multi.c $(pkg-config --cflags --libs libcurl)
 *   ./curl-multi http://127.0.0.1:PORT/hook 32 10      (URL, transfers in flight, seconds) */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *BODY = "{\"type\":\"patch.started\",\"app\":\"Bench\",\"environment\":\"Production\","
                          "\"instance\":{\"id\":\"i-1\"},\"window\":{\"id\":\"mw-1\",\"start\":\"2030-01-01T00:30:00Z\",\"end\":\"2030-01-01T00:45:00Z\"}}";

static size_t discard(char *ptr, size_t size, size_t n, void *data) { (void)ptr; (void)data; return size * n; }

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static CURL *make(const char *url, struct curl_slist *headers) {
    CURL *easy = curl_easy_init();
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, BODY);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    return easy;
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s URL transfers seconds\n", argv[0]); return 2; }
    const char *url = argv[1];
    int transfers = atoi(argv[2]);
    double seconds = atof(argv[3]);
    if (transfers < 1 || transfers > 1024 || seconds <= 0) { fprintf(stderr, "transfers 1-1024, seconds > 0\n"); return 2; }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    CURLM *multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)transfers);
    for (int i = 0; i < transfers; i++) curl_multi_add_handle(multi, make(url, headers));
    long done = 0, failed = 0;
    double start = now(), end = start + seconds;
    int running = 1;
    while (running || now() < end) {
        curl_multi_perform(multi, &running);
        CURLMsg *message;
        int left;
        while ((message = curl_multi_info_read(multi, &left))) {
            if (message->msg != CURLMSG_DONE) continue;
            CURL *easy = message->easy_handle;
            long status = 0;
            curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
            if (message->data.result == CURLE_OK && status >= 200 && status < 300) done++; else failed++;
            curl_multi_remove_handle(multi, easy);
            if (now() < end) {
                curl_multi_add_handle(multi, easy);  /* same handle: its connection is reused */
                running = 1;
            } else {
                curl_easy_cleanup(easy);
            }
        }
        if (running) curl_multi_poll(multi, NULL, 0, 100, NULL);
        if (!running && now() >= end) break;
    }
    double elapsed = now() - start;
    printf("curl-multi: %ld requests in %.2f s, %.0f requests/s, %ld failed\n", done, elapsed, done / elapsed, failed);
    curl_multi_cleanup(multi);
    curl_slist_free_all(headers);
    curl_global_cleanup();
    return failed > done / 100 ? 1 : 0;
}
