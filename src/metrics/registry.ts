import client from 'prom-client'

/**
 * Every Prometheus metric of the bridge (design §8 names, plus additions), created on one registry per app
 * instance so tests can build several apps in one process. Labels never carry user ids.
 */
export function createMetrics() {
  const registry = new client.Registry()
  const registers = [registry]
  // Wide buckets: one histogram serves heart rates (~60), minutes (~400) and steps (~10,000).
  const valueBuckets = [1, 5, 10, 25, 50, 75, 100, 150, 250, 500, 1000, 2500, 5000, 10_000, 25_000, 100_000]
  const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
  // When each provider's newest live notification arrived (epoch ms); read at scrape time by the age gauge.
  const lastWebhookAtMs = new Map<string, number>()
  const metrics = {
    registry,
    /** Records a verified live notification; keeps the newest time (intake and start-up seeding may interleave). */
    markWebhookReceived(provider: string, atMs: number): void {
      if (atMs > (lastWebhookAtMs.get(provider) ?? Number.NEGATIVE_INFINITY)) lastWebhookAtMs.set(provider, atMs)
    },
    webhookLastReceivedAgeSeconds: new client.Gauge({
      name: 'webhook_last_received_age_seconds',
      help: 'Seconds since the newest verified notification of a provider arrived (absent until the first one); silence is visible',
      labelNames: ['provider'] as const,
      registers,
      collect() {
        const nowMs = Date.now()
        for (const [provider, atMs] of lastWebhookAtMs) this.set({ provider }, Math.max(0, (nowMs - atMs) / 1000))
      }
    }),
    webhookEventsTotal: new client.Counter({
      name: 'webhook_events_total', help: 'Provider notifications accepted', labelNames: ['source', 'device_type'] as const, registers
    }),
    webhookEventsFailedTotal: new client.Counter({
      name: 'webhook_events_failed_total', help: 'Notifications or uploads that failed, by error type', labelNames: ['source', 'error_type'] as const, registers
    }),
    webhookProcessDurationSeconds: new client.Histogram({
      name: 'webhook_process_duration_seconds', help: 'Time to process one notification or upload, in seconds', labelNames: ['source'] as const, buckets: latencyBuckets, registers
    }),
    biometricValues: new client.Histogram({
      name: 'biometric_values', help: 'Distribution of stored values in canonical units', labelNames: ['metric_type', 'device_type'] as const, buckets: valueBuckets, registers
    }),
    webhookEventsIgnoredTotal: new client.Counter({
      name: 'webhook_events_ignored_total', help: 'Verified notifications of data types the bridge does not map (acknowledged, not processed)', labelNames: ['source'] as const, registers
    }),
    activeWebhookTasks: new client.Gauge({ name: 'active_webhook_tasks', help: 'Receipts being processed now', registers }),
    semaphoreWaitSeconds: new client.Histogram({
      name: 'semaphore_wait_seconds', help: 'Time a receipt waited for a worker slot, in seconds', buckets: latencyBuckets, registers
    }),
    receiptBacklog: new client.Gauge({ name: 'receipt_backlog', help: 'Live receipts pending processing, counted up to MAX_RECEIPT_BACKLOG', registers }),
    outboxBacklog: new client.Gauge({ name: 'outbox_backlog', help: 'Outbox rows not yet published to Kafka', registers }),
    kafkaMessagesPublishedTotal: new client.Counter({
      name: 'kafka_messages_published_total', help: 'Messages acknowledged by Kafka', labelNames: ['topic'] as const, registers
    }),
    dlqMessagesTotal: new client.Counter({
      name: 'dlq_messages_total', help: 'Messages dead-lettered', labelNames: ['reason'] as const, registers
    }),
    tokenRefreshTotal: new client.Counter({
      name: 'token_refresh_total', help: 'OAuth token refreshes', labelNames: ['provider', 'outcome'] as const, registers
    }),
    providerRequestsTotal: new client.Counter({
      name: 'provider_requests_total', help: 'Requests to provider APIs', labelNames: ['provider', 'status'] as const, registers
    }),
    providerBudgetRemaining: new client.Gauge({
      name: 'provider_budget_remaining', help: 'Requests left in the provider app\'s tightest budget window after the last request (shared by all nodes with Redis)', labelNames: ['provider'] as const, registers
    }),
    providerRateLimitRemaining: new client.Gauge({
      name: 'provider_rate_limit_remaining', help: 'Requests left as the provider last reported them (X-RateLimit-Remaining)', labelNames: ['provider'] as const, registers
    }),
    healthkitSamplesTotal: new client.Counter({
      name: 'healthkit_samples_total', help: 'HealthKit samples by outcome (accepted, duplicate, rejected, ignored, deleted)', labelNames: ['outcome'] as const, registers
    }),
    httpRequestDurationSeconds: new client.Histogram({
      name: 'http_request_duration_seconds', help: 'HTTP request duration, in seconds', labelNames: ['method', 'route', 'status'] as const, buckets: latencyBuckets, registers
    }),
    healthkitUploadsInFlight: new client.Gauge({ name: 'healthkit_uploads_in_flight', help: 'HealthKit uploads being received or stored now', registers }),
    auditRecordsTotal: new client.Counter({
      name: 'audit_records_total', help: 'Audit records written', labelNames: ['action'] as const, registers
    }),
    cacheErrorsTotal: new client.Counter({
      name: 'cache_errors_total', help: 'Cache commands that failed (Redis unreachable, timed out or refused), by operation', labelNames: ['operation'] as const, registers
    }),
    cacheLookupsTotal: new client.Counter({
      name: 'cache_lookups_total', help: 'Cache reads by kind (latest, recent) and result (hit, miss)', labelNames: ['kind', 'result'] as const, registers
    })
  }
  client.collectDefaultMetrics({ register: registry })
  return metrics
}

export type Metrics = ReturnType<typeof createMetrics>
