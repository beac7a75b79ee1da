package shim

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/containerd/cgroups/v3/cgroup1/stats"
	taskAPI "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/containerd/pkg/shutdown"
	"github.com/containerd/containerd/plugin"
	"github.com/containerd/containerd/protobuf"
	"github.com/containerd/containerd/runtime/v2/runc/task"
	"github.com/containerd/containerd/runtime/v2/shim"
	"github.com/containerd/ttrpc"
	"github.com/containerd/typeurl/v2"
)

func init() {
	// The task service the shim serves: the runc shim's, wrapped.
	plugin.Register(&plugin.Registration{
		Type:     plugin.TTRPCPlugin,
		ID:       "task",
		Requires: []plugin.Type{plugin.EventPlugin, plugin.InternalPlugin},
		InitFn: func(ic *plugin.InitContext) (interface{}, error) {
			pp, err := ic.GetByID(plugin.EventPlugin, "publisher")
			if err != nil {
				return nil, err
			}
			ss, err := ic.GetByID(plugin.InternalPlugin, "shutdown")
			if err != nil {
				return nil, err
			}
			ts, err := task.NewTaskService(ic.Context, pp.(shim.Publisher), ss.(shutdown.Service))
			if err != nil {
				return nil, err
			}
			return &service{TaskService: ts, binary: defaultBinary()}, nil
		},
	})
}

// service is the runc task service with runsc's options and stats.
type service struct {
	taskAPI.TaskService
	// binary is the default runsc binary.
	binary string
	// mu guards flags, the runsc flags in FlagsEnv: one shim serves
	// one pod, whose containers share a runtime handler and so its
	// runsc.toml.
	mu    sync.Mutex
	flags string
}

// RegisterTTRPC implements shim.TTRPCService.
func (s *service) RegisterTTRPC(server *ttrpc.Server) error {
	taskAPI.RegisterTaskService(server, s)
	return nil
}

// Create maps the request's options to runc options (the stock service
// type-asserts them) and sets the runsc flags of a runsc.toml, then
// creates the task.
func (s *service) Create(ctx context.Context, r *taskAPI.CreateTaskRequest) (*taskAPI.CreateTaskResponse, error) {
	opts, flags, err := mapOptions(r.Options, s.binary)
	if err != nil {
		return nil, fmt.Errorf("create %q: %w", r.ID, err)
	}
	if flags != nil {
		v, err := flagsValue(flags)
		if err != nil {
			return nil, fmt.Errorf("create %q: %w", r.ID, err)
		}
		s.mu.Lock()
		if s.flags != "" && s.flags != v {
			s.mu.Unlock()
			return nil, fmt.Errorf("create %q: runsc_config differs from the pod's first container's", r.ID)
		}
		s.flags = v
		err = os.Setenv(FlagsEnv, v)
		s.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("create %q: %w", r.ID, err)
		}
	}
	a, err := typeurl.MarshalAny(opts)
	if err != nil {
		return nil, fmt.Errorf("create %q: encoding runc options: %w", r.ID, err)
	}
	r.Options = protobuf.FromAny(a)
	return s.TaskService.Create(ctx, r)
}

// Stats returns the metrics of the container's cgroup, which runsc puts
// the container's processes in; if there are none to read, empty
// metrics rather than an error, which would break crictl stats.
func (s *service) Stats(ctx context.Context, r *taskAPI.StatsRequest) (*taskAPI.StatsResponse, error) {
	if resp, err := s.TaskService.Stats(ctx, r); err == nil {
		return resp, nil
	}
	data, err := typeurl.MarshalAny(&stats.Metrics{})
	if err != nil {
		return nil, fmt.Errorf("stats %q: %w", r.ID, err)
	}
	return &taskAPI.StatsResponse{Stats: protobuf.FromAny(data)}, nil
}
