package controlplane

import (
	"context"
	"errors"
)

// StartWithServer starts etcd and kube-apiserver (Start), then one
// signal-apiserver named name with extraArgs, and registers its APIService:
// with o.EndpointIP through a Service with EndpointSlices
// (RegisterAPIServiceEndpoints), else through an ExternalName Service
// (RegisterAPIService). It returns once the aggregator serves the signals
// group; on error everything it started is stopped.
func StartWithServer(ctx context.Context, o Options, name string, extraArgs ...string) (_ *ControlPlane, _ *Server, retErr error) {
	cp, err := Start(ctx, o)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if retErr != nil {
			retErr = errors.Join(retErr, cp.Stop())
		}
	}()
	server, err := cp.StartServer(ctx, name, extraArgs...)
	if err != nil {
		return nil, nil, err
	}
	if o.EndpointIP != nil {
		err = cp.RegisterAPIServiceEndpoints(ctx, server)
	} else {
		err = cp.RegisterAPIService(ctx, server)
	}
	if err != nil {
		return nil, nil, err
	}
	return cp, server, nil
}
