// Everything an application needs: #include <quorumq/quorumq.h>, link quorumq::client.
#pragma once

#include "quorumq/admin.h"
#include "quorumq/config.h"
#include "quorumq/consumer.h"
#include "quorumq/error.h"
#include "quorumq/partitioner.h"
#include "quorumq/producer.h"
#include "quorumq/types.h"
#include "quorumq/version.h"
