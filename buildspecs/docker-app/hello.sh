#!/bin/sh
echo "hello from localbuild-demo ${APP_VERSION:-dev}"
