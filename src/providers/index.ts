import type { ProviderType } from './types.js';
import { nginxProvider } from './lb/nginx.js';
import { haproxyProvider } from './lb/haproxy.js';
import { f5Provider } from './lb/f5.js';
import { prometheusMonitor } from './monitor/prometheus.js';
import { metricsMonitor } from './monitor/metrics.js';
import { elasticsearchMonitor } from './monitor/elasticsearch.js';
import { httpMonitor } from './monitor/http.js';
import { nacosProviderType } from './registry/nacos.js';
import { httpProviderType } from './generic/http.js';
import { dubboZookeeper } from './registry/dubbo-zookeeper.js';
import { dubboQos } from './registry/dubbo-qos.js';
import { ltsZookeeper } from './scheduler/lts-zookeeper.js';
import { elasticjobZookeeper } from './scheduler/elasticjob-zookeeper.js';
import { genericZookeeper } from './generic/zookeeper.js';
import { etcdProvider } from './registry/etcd.js';
import { rabbitmqProvider } from './mq/rabbitmq.js';
import { rocketmqProvider } from './mq/rocketmq.js';

/** Every provider type graywave knows: one line per provider. */
export const providerTypes: ProviderType[] = [
  prometheusMonitor,
  metricsMonitor,
  elasticsearchMonitor,
  httpMonitor,
  nacosProviderType,
  httpProviderType,
  nginxProvider,
  haproxyProvider,
  f5Provider,
  dubboZookeeper,
  dubboQos,
  ltsZookeeper,
  elasticjobZookeeper,
  genericZookeeper,
  etcdProvider,
  rabbitmqProvider,
  rocketmqProvider,
];

export function findProviderType(type: string): ProviderType | undefined {
  return providerTypes.find((p) => p.type === type);
}
