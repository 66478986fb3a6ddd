// The seed's Qt C++ client made a program. The lines between the two
// "seed" markers are the code block of "Client Implementation Example
// (Qt C++)" in training-websocket-schema.md, byte for byte (the e2e tests
// check it); around them is the least that runs them as a Qt application:
// an event loop, a QObject for the snippet's unqualified connect() (it comes
// from websocketclient.cpp, a QObject's member function), and an ending.
//
// The snippet prints with qDebug()/qWarning(); a message handler writes each
// line to stdout. An application using the snippet is done once it has
// printed "Training complete" (its "Update UI state" branch), so this one
// quits there. Its own notes (connected, disconnected) go to stderr.
//
// Build: g++ training_client_qt.cpp -o training_client_qt \
//          $(pkg-config --cflags --libs Qt5Core Qt5WebSockets) -fPIC

#include <QCoreApplication>
#include <QDebug>
#include <QJsonDocument>
#include <QJsonObject>
#include <QObject>
#include <QString>
#include <QUrl>
#include <QWebSocket>

#include <cstdio>

static void printLine(QtMsgType, const QMessageLogContext &, const QString &line)
{
    std::printf("%s\n", qPrintable(line));
    std::fflush(stdout);
    if (line == "Training complete") {
        QMetaObject::invokeMethod(QCoreApplication::instance(), "quit", Qt::QueuedConnection);
    }
}

struct WebSocketClient : QObject {
    void start()
    {
// ---- seed: begin ----
// FIX: Qt WebSocket client example from websocketclient.cpp

QWebSocket *webSocket = new QWebSocket();

connect(webSocket, &QWebSocket::textMessageReceived, [](const QString &message) {
    QJsonDocument doc = QJsonDocument::fromJson(message.toUtf8());
    if (doc.isNull() || !doc.isObject()) {
        qWarning() << "Invalid WebSocket message JSON";
        return;
    }

    QJsonObject obj = doc.object();
    QString messageType = obj["type"].toString();

    if (messageType == "epoch_metrics") {
        double auc = obj["val_auc"].toDouble();
        double dirAcc = obj["DirAcc"].toDouble();
        qDebug() << "Epoch metrics: AUC=" << auc << "DirAcc=" << dirAcc;
        // Update metrics panel
    }
    else if (messageType == "training_complete") {
        qDebug() << "Training complete";
        // Update UI state
    }
});

webSocket->open(QUrl("ws://localhost:8000/ws"));
// ---- seed: end ----

        connect(webSocket, &QWebSocket::connected, [] {
            std::fprintf(stderr, "connected\n");
        });
        connect(webSocket, &QWebSocket::disconnected, [webSocket] {
            std::fprintf(stderr, "disconnected: %d %s\n", int(webSocket->closeCode()), qPrintable(webSocket->closeReason()));
            QCoreApplication::exit(1);
        });
    }
};

int main(int argc, char **argv)
{
    QCoreApplication app(argc, argv);
    qInstallMessageHandler(printLine);
    WebSocketClient client;
    client.start();
    return app.exec();
}
