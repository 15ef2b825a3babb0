/**
 * Configuration files of the processes `npm run bench:proxy` starts: the nginx upstream, nginx
 * and Envoy as plain reverse proxies, and the Switchboard proxy. Every listener is on 127.0.0.1.
 */

/** nginx's `user` line: as root, workers stay root so they can use the run folder (mkdtemp, 0700). */
function nginxUser(): string {
  return process.getuid?.() === 0 ? 'user root;' : '';
}

function nginxCommon(dir: string, workers: number): string {
  return `
daemon off;
master_process on;
${nginxUser()}
worker_processes ${workers};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
`;
}

function nginxHttpCommon(dir: string): string {
  return `
  access_log off;
  client_body_temp_path ${dir}/client-body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  tcp_nodelay on;
`;
}

/**
 * The upstream every side talks to: nginx, one worker, answering every request with `body`
 * (200, text/plain) — on `port` in HTTP/1.1 and on `h2cPort` in h2c (prior knowledge).
 */
export function nginxUpstreamConfig(dir: string, port: number, h2cPort: number, body: string): string {
  return `${nginxCommon(dir, 1)}
http {${nginxHttpCommon(dir)}
  default_type text/plain;
  server {
    listen 127.0.0.1:${port};
    listen 127.0.0.1:${h2cPort} http2;
    location / { return 200 "${body}"; }
  }
}
`;
}

/**
 * nginx as a plain reverse proxy: `workers` workers, keep-alive connections to the upstream
 * (HTTP/1.1, `Connection` cleared), HTTP/1.1 on `port` and h2c on `h2cPort`. Nothing added:
 * no headers, no access log.
 */
export function nginxProxyConfig(
  dir: string,
  workers: number,
  port: number,
  h2cPort: number,
  upstreamPort: number,
): string {
  return `${nginxCommon(dir, workers)}
http {${nginxHttpCommon(dir)}
  upstream upstream {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
  }
  server {
    listen 127.0.0.1:${port};
    listen 127.0.0.1:${h2cPort} http2;
    location / {
      proxy_pass http://upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

/**
 * Envoy as a plain reverse proxy: one listener (HTTP/1.1 and h2c on the same port, codec
 * AUTO), one route to a static cluster (HTTP/1.1, pooled keep-alive by default), the router
 * filter alone, no access log, no admin listener. Envoy's defaults stand (it generates
 * x-request-id and adds x-envoy-upstream-service-time, as it does in a mesh).
 */
export function envoyConfig(port: number, upstreamPort: number): string {
  return `static_resources:
  listeners:
    - name: bench
      address: { socket_address: { address: 127.0.0.1, port_value: ${port} } }
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                '@type': type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: bench
                codec_type: AUTO
                route_config:
                  name: bench
                  virtual_hosts:
                    - name: all
                      domains: ['*']
                      routes:
                        - match: { prefix: / }
                          route: { cluster: upstream }
                http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      '@type': type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
    - name: upstream
      type: STATIC
      connect_timeout: 1s
      load_assignment:
        cluster_name: upstream
        endpoints:
          - lb_endpoints:
              - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: ${upstreamPort} } } }
`;
}

/**
 * The Switchboard proxy's configuration: one inbound HTTP listener on `port` routing every
 * path to the cluster `upstream`. The format follows the proxy issue (#4) as planned; if the
 * proxy's format changes, this is the one place to adapt.
 */
export function switchboardProxyConfig(port: number, upstreamPort: number): string {
  return `listeners:
  - name: inbound
    role: inbound
    address: 127.0.0.1
    port: ${port}
    protocol: http
    routes:
      - match: { path: { prefix: / } }
        destinations: [{ cluster: upstream, weight: 1 }]
clusters:
  - name: upstream
    endpoints: [{ host: 127.0.0.1, port: ${upstreamPort} }]
`;
}
