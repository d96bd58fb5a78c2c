#!/bin/bash
# The README's "try it" command: install what is missing, build, start a local S3 (Ceph RGW)
# and DynamoDB Local, create a demo bucket with a few files, and show it through s3vfs.
#
#   bash packaging/quickstart.sh         set up (idempotent: reuses running servers)
#   bash packaging/quickstart.sh stop    stop the servers it started
#
# State lives in $S3VFS_DEMO_DIR (default /var/tmp/s3vfs-demo).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
demo=${S3VFS_DEMO_DIR:-/var/tmp/s3vfs-demo}

mnt=${S3VFS_DEMO_MOUNT:-/mnt/s3vfs-demo}

if [ "${1:-}" = stop ]; then
	if grep -qs " $mnt fuse.s3vfs " /proc/mounts; then
		fusermount3 -u "$mnt" || fusermount3 -u -z "$mnt"
	fi
	bash tests/servers/rgw.sh stop "$demo/rgw" || true
	bash tests/servers/ddb.sh stop "$demo/ddb" || true
	echo "quickstart: servers stopped (state kept in $demo; rm -rf it to start afresh)"
	exit 0
fi

bash packaging/setup.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null

mkdir -p "$demo"
rgw=$(bash tests/servers/rgw.sh start "$demo/rgw" | grep '^endpoint=')
ddb=$(bash tests/servers/ddb.sh start "$demo/ddb" | grep '^endpoint=')
endpoint=$(sed -n 's/.*endpoint=\([^ ]*\).*/\1/p' <<<"$rgw")
ddb_endpoint=$(sed -n 's/.*endpoint=\([^ ]*\).*/\1/p' <<<"$ddb")
export AWS_ACCESS_KEY_ID=$(sed -n 's/.*access_key=\([^ ]*\).*/\1/p' <<<"$rgw")
export AWS_SECRET_ACCESS_KEY=$(sed -n 's/.*secret_key=\([^ ]*\).*/\1/p' <<<"$rgw")
export AWS_EC2_METADATA_DISABLED=true

ctl=("$top/build/s3vfs-ctl" --endpoint "$endpoint" --path-style --ddb-endpoint "$ddb_endpoint")
"${ctl[@]}" mb s3://demo
echo "Hello from s3vfs." | "${ctl[@]}" put s3://demo/hello.txt - >/dev/null
printf '<h1>s3vfs demo</h1>\n' | "${ctl[@]}" put s3://demo/site/index.html - \
	--content-type text/html >/dev/null
printf 'a,b\n1,2\n' | "${ctl[@]}" put s3://demo/data/table.csv - >/dev/null

# The endpoints and keys, for a shell: . $demo/env
umask 077
cat >"$demo/env" <<ENV
export AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
export AWS_EC2_METADATA_DISABLED=true S3_ENDPOINT=$endpoint DDB_ENDPOINT=$ddb_endpoint
ENV
umask 022

# Mount the demo bucket (daemonized; its log goes to syslog), chains on DynamoDB Local.
mkdir -p "$mnt"
if ! grep -qs " $mnt fuse.s3vfs " /proc/mounts; then
	"$top/build/s3vfs" demo "$mnt" -o "endpoint=$endpoint,use_path_request_style,allow_other" \
		-o "cache_dir=$demo/cache,stat_ttl=5" \
		-o "dynamodb_endpoint=$ddb_endpoint,chain_table=s3vfs-demo,chain_create_table"
fi

echo
echo "The demo bucket, mounted on $mnt:"
ls -l "$mnt"
cat <<MSG

Local S3 (Ceph RGW):  $endpoint    DynamoDB Local: $ddb_endpoint
Endpoints and keys for your shell: . $demo/env
Try (the README has a 5-minute tour):
  ls -lR $mnt; cat $mnt/hello.txt
  echo "written through the mount" > $mnt/new.txt; mkdir $mnt/docs
  getfattr -n user.s3vfs.stats $mnt          # request counters as JSON
  export AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY AWS_EC2_METADATA_DISABLED=true
  build/s3vfs-ctl --endpoint $endpoint --path-style ls s3://demo/   # the same bucket through the wire layer
Unmount and stop the servers: bash packaging/quickstart.sh stop
MSG
