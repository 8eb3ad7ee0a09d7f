package deps
import (
 _ "go.etcd.io/bbolt"
 _ "github.com/eclipse/paho.mqtt.golang"
 _ "github.com/kardianos/service"
 _ "github.com/tarm/serial"
 _ "github.com/minio/selfupdate"
 _ "github.com/mochi-mqtt/server/v2"
 _ "modernc.org/sqlite"
 _ "github.com/jackc/pgx/v5"
 _ "gopkg.in/yaml.v3"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "github.com/creack/pty"
)
