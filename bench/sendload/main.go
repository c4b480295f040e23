// Command sendload drives chat4all.v1.MessageService/SendMessage through ghz's runner with one
// user per request in turn: ghz's command line sends every request with the same metadata, so it
// cannot spread a load over many tokens (and per-user rate limits). It prints ghz's own report.
//
//	sendload -users users.txt -rps 2000 -n 20000 -c 50 -connections 4 127.0.0.1:50051
//
// users.txt: one "<access_token> <conversation_id>" per line (bench/api_setup.py --users N writes it).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/bojand/ghz/printer"
	"github.com/bojand/ghz/runner"
	"github.com/google/uuid"
	"github.com/jhump/protoreflect/desc"
	"github.com/jhump/protoreflect/desc/protoparse"
	"github.com/jhump/protoreflect/dynamic"
	"google.golang.org/grpc/metadata"
)

type user struct {
	md             metadata.MD
	conversationID string
}

func readUsers(path string) ([]user, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var users []user
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 64*1024), 64*1024)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) != 2 {
			continue
		}
		users = append(users, user{md: metadata.Pairs("authorization", "Bearer "+fields[0]), conversationID: fields[1]})
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("%s: no '<token> <conversation_id>' lines", path)
	}
	return users, scanner.Err()
}

func inputType(protoDir, protoFile string) (*desc.MessageDescriptor, error) {
	parser := protoparse.Parser{ImportPaths: []string{protoDir}}
	files, err := parser.ParseFiles(protoFile)
	if err != nil {
		return nil, err
	}
	svc := files[0].FindService("chat4all.v1.MessageService")
	if svc == nil {
		return nil, fmt.Errorf("%s has no chat4all.v1.MessageService", protoFile)
	}
	return svc.FindMethodByName("SendMessage").GetInputType(), nil
}

func main() {
	usersPath := flag.String("users", "", "file of '<token> <conversation_id>' lines")
	protoDir := flag.String("import-path", "protos", "proto import path")
	protoFile := flag.String("proto", "chat4all/v1/messages.proto", "proto file, relative to -import-path")
	rps := flag.Uint("rps", 0, "requests per second (0 = as fast as possible)")
	total := flag.Uint("n", 1000, "number of requests")
	concurrency := flag.Uint("c", 50, "concurrent workers")
	connections := flag.Uint("connections", 4, "connections")
	timeout := flag.Duration("timeout", 10*time.Second, "timeout of each request")
	cmid := flag.Bool("cmid", false, "send a new client_message_id (UUID) with every request")
	format := flag.String("format", "summary", "ghz report format (summary, json, ...)")
	flag.Parse()
	if *usersPath == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: sendload -users FILE [flags] HOST:PORT")
		os.Exit(2)
	}
	users, err := readUsers(*usersPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mtype, err := inputType(*protoDir, *protoFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pick := func(cd *runner.CallData) user { return users[int(cd.RequestNumber%int64(len(users)))] }
	// Both providers see the same CallData, so a request's token and conversation belong together.
	metadataFor := func(cd *runner.CallData) (*metadata.MD, error) {
		md := pick(cd).md
		return &md, nil
	}
	dataFor := func(cd *runner.CallData) ([]*dynamic.Message, error) {
		msg := dynamic.NewMessage(mtype)
		msg.SetFieldByName("conversation_id", pick(cd).conversationID)
		msg.SetFieldByName("content", fmt.Sprintf("bench message %d", cd.RequestNumber))
		if *cmid {
			msg.SetFieldByName("client_message_id", uuid.New().String())
		}
		return []*dynamic.Message{msg}, nil
	}
	report, err := runner.Run(
		"chat4all.v1.MessageService.SendMessage",
		flag.Arg(0),
		runner.WithProtoFile(*protoFile, []string{*protoDir}),
		runner.WithInsecure(true),
		runner.WithRPS(*rps),
		runner.WithTotalRequests(*total),
		runner.WithConcurrency(*concurrency),
		runner.WithConnections(*connections),
		runner.WithTimeout(*timeout),
		runner.WithMetadataProvider(metadataFor),
		runner.WithDataProvider(dataFor),
		runner.WithName(fmt.Sprintf("SendMessage, %d users", len(users))),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := (&printer.ReportPrinter{Report: report, Out: os.Stdout}).Print(*format); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
