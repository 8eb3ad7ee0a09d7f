package deps

import (
	_ "github.com/creack/pty"
	_ "github.com/eclipse/paho.mqtt.golang"
	_ "github.com/jackc/pgx/v5"
	_ "github.com/kardianos/service"
	_ "github.com/minio/selfupdate"
	_ "github.com/mochi-mqtt/server/v2"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/tarm/serial"
	_ "go.etcd.io/bbolt"
	_ "gopkg.in/yaml.v3"
	_ "modernc.org/sqlite"
)
